"""`verify store --decode`: the full decode check as a scrub of its own. Real broken audio in
the store (files of the mutagen corpus FFmpeg cannot decode to their end, a real clip with
4 KiB of its frames zeroed), found with the decoder's reason, recorded without calling the
intact bytes damaged; budgets, rotation, kill -9 and Dask as for the SHA-256 scrub."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from conftest import require_testdata
from fixity_fixture import build, copy_archive, flip
from musicark.archive import Archive, utc_now
from musicark.cli import app
from musicark.ingest.store import Store
from musicark.verify import ScrubOptions, verify_store
from musicark.verify.run import run_verify

SRC = str(Path(__file__).resolve().parents[1] / "src")
# Real files of the mutagen corpus that demux to their end but do not decode to it.
BROKEN = ("audio/mutagen/variable-block.flac", "audio/mutagen/issue_29.wma")
CLIP = "audio/music/espressif-samples-kevin-macleod/gs-16b-1c-44100hz.m4a"  # ALAC
LEDGER = ("SELECT f.sha256, f.status, f.reason, f.fixity, d.outcome, d.reason FROM files f "
          "LEFT JOIN decode_checks d ON d.file_id = f.rowid ORDER BY f.sha256")
AUDIO = "codec IS NOT NULL AND codec != 'zstd-patch' AND status NOT IN ('quarantined', 'absent')"


def admit(arc: Path, src: Path) -> str:
    """Store a file and give it an ok ledger row with the facts its container declares: what
    an ingest that checks structure, not every frame, admits. Returns its SHA-256."""
    with av.open(str(src)) as container:  # demuxes: the structure is sound
        stream = container.streams.audio[0]
        packets = sum(1 for _ in container.demux(stream))
        facts = (container.format.name, stream.codec_context.name,
                 stream.codec_context.sample_rate, stream.codec_context.channels)
    assert packets > 1
    with Archive.open(arc) as archive:
        sha, size = Store(archive.store_path).put(src)
        archive.conn.execute(
            "INSERT INTO files(sha256, size, container, codec, sample_rate, channels, "
            "provenance, status, added_at) VALUES (?, ?, ?, ?, ?, ?, 'test', 'ok', ?)",
            (sha, size, *facts, utc_now()))
    return sha


def zeroed_clip(testdata: Path, dest: Path) -> Path:
    """A real ALAC clip with 4 KiB in the middle of its audio frames zeroed (ALAC frames
    carry no checksum: the container stays sound, the decoder fails)."""
    data = bytearray((testdata / CLIP).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)
    dest.write_bytes(bytes(data))
    return dest


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The fixity archive plus three stored-but-undecodable files; (path, their SHA-256)."""
    testdata = require_testdata()
    arc = build(tmp_path_factory)
    scratch = tmp_path_factory.mktemp("broken")
    shas = [admit(arc, testdata / rel) for rel in BROKEN]
    shas.append(admit(arc, zeroed_clip(testdata, scratch / "clip.m4a")))
    shas.append(admit(arc, testdata / CLIP))  # the intact clip decodes
    return arc, shas[:3]


def _audio_count(arc: Path) -> int:
    with Archive.open(arc) as archive:
        return archive.conn.execute(f"SELECT count(*) FROM files WHERE {AUDIO}").fetchone()[0]


def test_decode_finds_undecodable_audio_and_keeps_the_intact_bytes_ok(base, tmp_path) -> None:
    arc = copy_archive(base[0], tmp_path / "a")
    broken = set(base[1])
    assert run_verify(arc, "store", workers=1).exit_code == 0  # the bytes are the ones stored
    with Archive.open(arc) as archive:
        victim = archive.conn.execute(f"SELECT sha256 FROM files WHERE {AUDIO} AND sha256 "
                                      "NOT IN (?, ?, ?) LIMIT 1", tuple(broken)).fetchone()[0]
        flip(Store(archive.store_path).path_for(victim))  # and one file with damaged bytes
        report = verify_store(archive, ScrubOptions(decode=True), workers=2)
        conn = archive.conn
        undecodable = {p.sha256: p.detail for p in report.problems if p.kind == "undecodable"}
        assert set(undecodable) == broken
        assert all("decoding failed after" in why for why in undecodable.values()), undecodable
        assert [p.sha256 for p in report.problems if p.kind == "checksum"] == [victim]
        assert report.exit_code == 1
        notes = report.notes
        assert notes["decoded"] == _audio_count(arc) - 1  # all audio but the damaged file
        assert notes["undecodable"] == 3 and notes["audio_seconds"] > 60
        # the intact-but-undecodable files keep their status; the damaged bytes do not
        rows = {r[0]: r[1:] for r in conn.execute(LEDGER)}
        for sha in broken:
            status, reason, fixity, outcome, why = rows[sha]
            assert (status, reason, fixity, outcome) == ("ok", None, "ok", "undecodable")
            assert why == undecodable[sha]
        assert rows[victim][0] == "damaged" and rows[victim][3] is None  # not decoded
        checked = [r for r in rows.values() if r[3] is not None]
        assert len(checked) == notes["decoded"]  # every decoded file has its row, no other
        assert conn.execute("SELECT count(*) FROM files f JOIN decode_checks d ON "
                            "d.file_id = f.rowid WHERE f.codec = 'zstd-patch'").fetchone()[0] == 0
        events = conn.execute("SELECT subject, detail FROM events WHERE kind = 'fixity' "
                              "AND outcome = 'undecodable'").fetchall()
        assert {s: json.loads(d)["detail"] for s, d in events} == undecodable
        assert json.loads(events[0][1])["by"] == "verify store --decode"


def test_a_file_that_decodes_again_is_recorded(base, tmp_path) -> None:
    """A newer FFmpeg may decode what an older one could not: the outcome and an event say so."""
    arc = copy_archive(base[0], tmp_path / "a")
    with Archive.open(arc) as archive:
        verify_store(archive, ScrubOptions(decode=True, walk=False), workers=1)
        conn = archive.conn
        good = conn.execute("SELECT f.sha256, f.rowid FROM files f JOIN decode_checks d "
                            "ON d.file_id = f.rowid WHERE d.outcome = 'ok' LIMIT 1").fetchone()
        conn.execute("UPDATE decode_checks SET outcome = 'undecodable', reason = 'old FFmpeg', "
                     "checked_at = '2000-01-01T00:00:00.000000Z' WHERE file_id = ?", (good[1],))
        again = verify_store(archive, ScrubOptions(decode=True, walk=False, max_bytes=1),
                             workers=1)
        assert again.files == 1 and again.notes["undecodable"] == 0  # oldest check first
        assert conn.execute("SELECT outcome FROM decode_checks WHERE file_id = ?",
                            (good[1],)).fetchone()[0] == "ok"
        detail = conn.execute("SELECT detail FROM events WHERE kind = 'fixity' AND outcome = "
                              "'ok' AND subject = ?", (good[0],)).fetchone()[0]
        assert json.loads(detail) == {"by": "verify store --decode", "was": "undecodable"}


def test_budgets_rotation_and_the_two_speeds_keep_their_own_scrubs(base, tmp_path) -> None:
    arc = copy_archive(base[0], tmp_path / "a")
    with Archive.open(arc) as archive:
        conn = archive.conn
        total = conn.execute("SELECT count(*) FROM files WHERE status != 'absent'").fetchone()[0]
        audio = _audio_count(arc)
        verify_store(archive, ScrubOptions(walk=False), workers=1)  # a plain scrub first:
        assert conn.execute("SELECT count(*) FROM decode_checks").fetchone()[0] == 0
        first = verify_store(archive, ScrubOptions(decode=True, max_bytes=1, walk=False),
                             workers=1)  # ... says nothing about decoding: audio comes first
        assert first.files == 1 and first.notes["decoded"] == 1
        assert first.notes["stopped_by"] == "max_bytes"
        rest = verify_store(archive, ScrubOptions(decode=True, walk=False), workers=1)
        assert rest.notes["resumed"] and rest.files == total - 1
        assert rest.notes["decoded"] == audio - 1
        again = verify_store(archive, ScrubOptions(decode=True, walk=False), workers=1)
        assert not again.notes["resumed"] and again.files == total
        recent = verify_store(archive, ScrubOptions(decode=True, older_than=3600, walk=False),
                              workers=1)
        assert recent.files == 0
        seen: set[str] = set()
        for _ in range(4):  # a 25 % sample rotates through the audio by decode check
            sample = verify_store(archive, ScrubOptions(decode=True, sample=0.25, walk=False),
                                  workers=1)
            assert 0 < sample.files <= -(-total // 4)
            seen.update(r[0] for r in conn.execute(
                "SELECT file_id FROM decode_checks ORDER BY checked_at DESC LIMIT ?",
                (sample.notes["decoded"],)))
        assert len(seen) == audio
        timed = verify_store(archive, ScrubOptions(decode=True, max_time=0, walk=False),
                             workers=1)
        assert timed.files == 0 and timed.notes["stopped_by"] == "max_time"


KILLED_DECODE = """
import os, signal, sys
import musicark.verify.store as store
from musicark.archive import Archive
store.BATCH_FILES = store.DECODE_BATCH_FILES = 1  # a progress call per file
store.COMMIT_SECONDS = 0.0
seen = 0
def progress(done, total):
    global seen
    seen += 1
    if seen == 12:
        os.kill(os.getpid(), signal.SIGKILL)
with Archive.open(sys.argv[1]) as archive:
    store.verify_store(archive, store.ScrubOptions(decode=True), workers=1, progress=progress)
"""


def test_kill_9_during_a_decode_run_then_rerun_gives_the_same_outcome(base, tmp_path) -> None:
    killed = copy_archive(base[0], tmp_path / "killed")
    clean = copy_archive(base[0], tmp_path / "clean")
    env = {**os.environ, "PYTHONPATH": SRC}
    code = subprocess.run([sys.executable, "-c", KILLED_DECODE, str(killed)], env=env,
                          timeout=300).returncode
    assert code == -signal.SIGKILL
    with Archive.open(killed) as archive:
        assert archive.conn.execute("SELECT count(*) FROM decode_checks").fetchone()[0] >= 10
        resumed = verify_store(archive, ScrubOptions(decode=True), workers=1)
        assert resumed.notes["resumed"] is True
        assert 0 < resumed.notes["decoded"] < _audio_count(killed) - 9  # only what was left
        after_kill = archive.conn.execute(LEDGER).fetchall()
        events = archive.conn.execute("SELECT subject FROM events WHERE outcome = "
                                      "'undecodable' ORDER BY subject").fetchall()
    with Archive.open(clean) as archive:
        whole = verify_store(archive, ScrubOptions(decode=True), workers=1)
        assert whole.notes["resumed"] is False and whole.notes["undecodable"] == 3
        assert archive.conn.execute(LEDGER).fetchall() == after_kill
        assert archive.conn.execute("SELECT subject FROM events WHERE outcome = "
                                    "'undecodable' ORDER BY subject").fetchall() == events
    assert sorted(s for (s,) in events) == sorted(base[1])  # each failure recorded once


def test_dask_decodes_as_local_processes_do(base, tmp_path) -> None:
    from distributed import Client, LocalCluster

    local_arc = copy_archive(base[0], tmp_path / "local")
    dask_arc = copy_archive(base[0], tmp_path / "dask")

    def facts(report) -> tuple:
        notes = {k: report.notes[k] for k in ("decoded", "undecodable", "audio_seconds")}
        return (report.files, report.bytes, notes,
                sorted((p.sha256 or "", p.kind, p.detail) for p in report.problems))

    local = run_verify(local_arc, "store", ScrubOptions(decode=True), workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        on_dask = run_verify(dask_arc, "store", ScrubOptions(decode=True), dask=client)
    assert local.exit_code == on_dask.exit_code == 1
    assert facts(local) == facts(on_dask)
    ledgers = []
    for arc in (local_arc, dask_arc):
        with Archive.open(arc) as archive:
            ledgers.append(archive.conn.execute(LEDGER).fetchall())
    assert ledgers[0] == ledgers[1]


runner = CliRunner()


def test_cli_decode_json_text_and_refusals(base, tmp_path) -> None:
    arc = copy_archive(base[0], tmp_path / "a")
    shown = runner.invoke(app, ["verify", "all", "--decode", "--archive", str(arc), "--json",
                                "--workers", "1"])
    assert shown.exit_code == 1, shown.output
    data = json.loads(shown.stdout)
    assert sorted(p["sha256"] for p in data["problems"] if p["kind"] == "undecodable") == \
        sorted(base[1])
    assert data["notes"]["store.decoded"] == _audio_count(arc)
    assert data["notes"]["store.undecodable"] == 3
    text = runner.invoke(app, ["verify", "store", "--decode", "--older-than", "1h",
                               "--archive", str(arc), "--workers", "1"])
    assert text.exit_code == 0, text.output  # all decoded within the hour: nothing was due
    assert "decoded 0 audio files" in text.stdout
    text = runner.invoke(app, ["verify", "store", "--decode", "--archive", str(arc),
                               "--workers", "1"])
    flat = text.stdout.replace("\n", " ")
    assert text.exit_code == 1 and "undecodable" in flat and "decoding failed after" in flat
    assert "3 undecodable" in flat
    for refused in (["verify", "releases", "--decode"], ["verify", "catalog", "--decode"],
                    ["verify", "--bag", str(tmp_path), "--decode"]):
        result = runner.invoke(app, [*refused, "--archive", str(arc)])
        assert result.exit_code == 2 and "--decode" in result.output, result.output
    plain = runner.invoke(app, ["verify", "store", "--archive", str(arc), "--json"])
    assert plain.exit_code == 0 and "decoded" not in json.loads(plain.stdout)["notes"]


def _decode_crashing_on_the_clip(store_root: str, items: list[tuple]) -> list[tuple]:
    """A decoder that segfaults on one file, as FFmpeg might on crafted input. Handed to the
    runner in place of `check_decode_batch`: workers import it from here (they start from a
    fork server, so a patch of a module's global in this process would not reach them)."""
    from musicark.verify.store import check_decode_batch
    if any(sha == os.environ["MUSICARK_TEST_CRASH_ON"] for sha, _, _ in items):
        faulthandler.disable()  # pytest's dump of the crash is noise in the log
        os.kill(os.getpid(), signal.SIGSEGV)
    return check_decode_batch(store_root, items)


def _decode_hanging_on_the_clip(store_root: str, items: list[tuple]) -> list[tuple]:
    """A decoder that never returns on one file (a loop on crafted input)."""
    import threading

    from musicark.verify.store import check_decode_batch
    if any(sha == os.environ["MUSICARK_TEST_HANG_ON"] for sha, _, _ in items):
        threading.Event().wait()
    return check_decode_batch(store_root, items)


def test_a_decoder_crash_is_one_undecodable_file_not_the_end_of_the_run(
        base, tmp_path, monkeypatch) -> None:
    """The worker that decodes it dies: the batch runs again file by file, the crashing
    file is reported with how its worker died, and every other file is still checked."""
    import musicark.verify.store as store_module

    arc = copy_archive(base[0], tmp_path / "a")
    crasher = base[1][2]  # the zeroed clip
    monkeypatch.setenv("MUSICARK_TEST_CRASH_ON", crasher)
    monkeypatch.setattr(store_module, "check_decode_batch", _decode_crashing_on_the_clip)
    with Archive.open(arc) as archive:
        report = verify_store(archive, ScrubOptions(decode=True), workers=2)
        undecodable = {p.sha256: p.detail for p in report.problems if p.kind == "undecodable"}
        assert set(undecodable) == set(base[1])
        assert undecodable[crasher] == "the decoder crashed (worker died: killed by SIGSEGV)"
        assert report.notes["decoded"] == _audio_count(arc)
        assert report.notes["finished"] is True


def test_a_decoder_that_hangs_is_one_undecodable_file_not_the_end_of_the_run(
        base, tmp_path, monkeypatch) -> None:
    """Past its time budget the worker is killed: the batch runs again file by file, the
    file whose decode hangs is reported with its budget, every other file is checked."""
    import musicark.verify.store as store_module

    arc = copy_archive(base[0], tmp_path / "a")
    hanger = base[1][2]  # the zeroed clip
    monkeypatch.setenv("MUSICARK_TEST_HANG_ON", hanger)
    monkeypatch.setenv("MUSICARK_BUDGET_FLOOR", "5")  # the batches that decode do in time
    monkeypatch.setenv("MUSICARK_BUDGET_PER_MIB", "0")
    monkeypatch.setattr(store_module, "check_decode_batch", _decode_hanging_on_the_clip)
    with Archive.open(arc) as archive:
        report = verify_store(archive, ScrubOptions(decode=True), workers=2)
        undecodable = {p.sha256: p.detail for p in report.problems if p.kind == "undecodable"}
        assert set(undecodable) == set(base[1])
        assert undecodable[hanger] == "the decoder hung after 5 s"
        assert report.notes["decoded"] == _audio_count(arc)
        assert report.notes["finished"] is True
