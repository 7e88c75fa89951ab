"""Scrub runs: budgets and resumption, kill -9 during verify and repair (rerun, same
outcome), Dask gives the local report, store walk findings, size checks in derive and tag,
and the CLI's exit codes and JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fixity_fixture import build, copy_archive, flip, hashes
from musicark.archive import Archive
from musicark.cli import app
from musicark.ingest.store import Store
from musicark.verify import ScrubOptions, verify_store
from musicark.verify.repair import repair
from musicark.verify.run import run_verify

LEDGER = "SELECT sha256, status, reason, fixity FROM files ORDER BY sha256"
# Opus originals (tagged, with a patch), encodes, tagged Opus copies and patches: files the
# archive can rebuild itself (an untagged FLAC kept only as Opus cannot be).
REBUILDABLE = "codec IN ('opus', 'zstd-patch')"
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory)


def _store_files(arc: Path, where: str = "1") -> list[Path]:
    with Archive.open(arc) as archive:
        shas = [r[0] for r in archive.conn.execute(
            f"SELECT sha256 FROM files WHERE sha256 IS NOT NULL AND {where} ORDER BY rowid")]
    return [Store(arc / "store").path_for(s) for s in shas]


def _child(code: str, arc: Path) -> int:
    """Run `code` in a fresh interpreter (it kills itself with SIGKILL at some point)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-c", code, str(arc)], env=env,
                          timeout=300).returncode


KILLED_VERIFY = """
import os, signal, sys
import musicark.verify.store as store
from musicark.archive import Archive
store.BATCH_FILES, store.COMMIT_SECONDS = 1, 0.0
seen = 0
def progress(done, total):
    global seen
    seen += 1
    if seen == 12:
        os.kill(os.getpid(), signal.SIGKILL)
with Archive.open(sys.argv[1]) as archive:
    store.verify_store(archive, workers=1, progress=progress)
"""


def test_kill_9_during_verify_then_rerun_gives_the_same_outcome(base: Path,
                                                                 tmp_path: Path) -> None:
    killed = copy_archive(base, tmp_path / "killed")
    clean = copy_archive(base, tmp_path / "clean")
    for arc in (killed, clean):  # the same damage early and late in the scrub order
        files = _store_files(arc)
        flip(files[1])
        flip(files[-2])
    assert _child(KILLED_VERIFY, killed) == -signal.SIGKILL
    with Archive.open(killed) as archive:
        resumed = verify_store(archive, workers=1)
        assert resumed.notes["resumed"] is True
        assert 0 < resumed.files < len(_store_files(killed))  # only what was left
        after_kill = archive.conn.execute(LEDGER).fetchall()
    with Archive.open(clean) as archive:
        whole = verify_store(archive, workers=1)
        assert whole.notes["resumed"] is False and len(whole.damaged) == 2
        assert archive.conn.execute(LEDGER).fetchall() == after_kill


KILLED_REPAIR = """
import os, signal, sys
import musicark.verify.repair as repair
from musicark.archive import Archive
mode = os.environ["KILL_AT"]
real_replace = os.replace
def replace(src, dst):
    if mode == "install" and "/store/sha256/" in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)  # after the damaged file was linked aside
    return real_replace(src, dst)
os.replace = replace
def progress(done, total):
    if mode == "between" and done == 1:
        os.kill(os.getpid(), signal.SIGKILL)
with Archive.open(sys.argv[1]) as archive:
    repair.repair(archive, progress=progress)
"""


@pytest.mark.parametrize("kill_at", ["install", "between"])
def test_kill_9_during_repair_then_rerun_heals_everything(base: Path, tmp_path: Path,
                                                          kill_at: str) -> None:
    arc = copy_archive(base, tmp_path / "a")
    before = hashes(arc)
    files = _store_files(arc, REBUILDABLE)
    for path in files[:3]:
        flip(path)
    assert run_verify(arc, "store", workers=1).exit_code == 1
    os.environ["KILL_AT"] = kill_at
    try:
        assert _child(KILLED_REPAIR, arc) == -signal.SIGKILL
    finally:
        del os.environ["KILL_AT"]
    for path in files[:3]:  # never a moment without a file at the store path
        assert path.exists()
    with Archive.open(arc) as archive:
        result = repair(archive)
    assert result.exit_code == 0, result.as_dict()
    assert run_verify(arc, workers=1).exit_code == 0
    assert hashes(arc) == before


def test_dask_gives_the_same_report_as_local_processes(base: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    arc = copy_archive(base, tmp_path / "a")
    flip(_store_files(arc)[3])

    def facts(report) -> tuple:
        return (report.files, report.bytes, sorted(p.line() for p in report.problems))

    local = run_verify(arc, workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        on_dask = run_verify(arc, dask=client)
    assert local.exit_code == on_dask.exit_code == 1
    assert facts(local) == facts(on_dask)


def test_budgets_sample_and_older_than_slice_the_scrub(base: Path, tmp_path: Path) -> None:
    arc = copy_archive(base, tmp_path / "a")
    with Archive.open(arc) as archive:
        total = archive.conn.execute("SELECT count(*) FROM files").fetchone()[0]
        first = verify_store(archive, ScrubOptions(max_bytes=1, walk=False), workers=1)
        assert first.files == 1 and first.notes["stopped_by"] == "max_bytes"
        rest = verify_store(archive, ScrubOptions(walk=False), workers=1)
        assert rest.notes["resumed"] and rest.files == total - 1  # budgets: same scrub
        again = verify_store(archive, ScrubOptions(walk=False), workers=1)
        assert not again.notes["resumed"] and again.files == total  # that one finished
        recent = verify_store(archive, ScrubOptions(older_than=3600, walk=False), workers=1)
        assert recent.files == 0  # all verified within the hour
        seen = set()
        for _ in range(4):  # a 25 % sample rotates through the store
            sample = verify_store(archive, ScrubOptions(sample=0.25, walk=False), workers=1)
            assert sample.files <= -(-total // 4)
            seen.update(archive.conn.execute(
                "SELECT sha256 FROM files ORDER BY verified_at DESC LIMIT ?",
                (sample.files,)).fetchall())
        assert len(seen) == total


def test_the_walk_reports_orphans_leftovers_and_writable_files(base: Path,
                                                               tmp_path: Path) -> None:
    arc = copy_archive(base, tmp_path / "a")
    store = Store(arc / "store")
    orphan = store.path_for("ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"nobody's")
    orphan.chmod(0o444)
    store.tmp.mkdir(parents=True, exist_ok=True)
    (store.tmp / "0123.part").write_bytes(b"half")
    writable = _store_files(arc)[0]
    writable.chmod(0o644)
    with Archive.open(arc) as archive:
        report = verify_store(archive, workers=1)
    assert report.exit_code == 0  # worth knowing, not damage
    assert report.notes["orphans"] == 1 and report.notes["part_files"] == 1
    details = {p.path: p.detail for p in report.problems}
    assert "orphan" in details[str(orphan)] and "writable" in details[str(writable)]


def test_derive_and_tag_treat_a_size_mismatch_as_damage(base: Path, tmp_path: Path) -> None:
    from musicark.derive.run import derive
    from musicark.derive.tagging import tag_files

    arc = copy_archive(base, tmp_path / "a")
    with Archive.open(arc) as archive:
        conn = archive.conn
        conn.execute("DELETE FROM derivations")  # as if nothing was derived or tagged yet
        sha = conn.execute("SELECT f.sha256 FROM plan_items pi JOIN track_files tf "
                           "ON tf.track_rowid = pi.track_rowid JOIN files f "
                           "ON f.rowid = tf.file_rowid WHERE pi.tier = 'opus75' "
                           "ORDER BY f.rowid").fetchone()[0]
        path = Store(archive.store_path).path_for(sha)
        path.chmod(0o644)
        with open(path, "ab") as fh:
            fh.write(b"junk")
        report = derive(archive, workers=1)
        assert any("damaged" in f["reason"] for f in report.failed)
        row = conn.execute("SELECT status, fixity FROM files WHERE sha256 = ?",
                           (sha,)).fetchone()
        assert row == ("damaged", "size")
        event = conn.execute("SELECT outcome, detail FROM events WHERE kind = 'fixity' AND "
                             "subject = ?", (sha,)).fetchone()
        assert event[0] == "size" and "derive" in event[1]
        tagged = tag_files(archive, workers=1)
        assert sha not in json.dumps(tagged)  # a damaged file is not even a candidate


runner = CliRunner()


def test_cli_exit_codes_and_json(base: Path, tmp_path: Path) -> None:
    arc = copy_archive(base, tmp_path / "a")
    good = runner.invoke(app, ["verify", "--archive", str(arc), "--json", "--workers", "1"])
    assert good.exit_code == 0, good.output
    data = json.loads(good.stdout)
    assert data["ok"] and data["files"] > 20 and data["problems"] == []
    victim = _store_files(arc, REBUILDABLE)[2]
    flip(victim)
    bad = runner.invoke(app, ["verify", "store", "--archive", str(arc), "--workers", "1"])
    assert bad.exit_code == 1 and str(victim) in bad.stdout.replace("\n", "")
    assert "checksum" in bad.stdout
    fixed = runner.invoke(app, ["repair", "--archive", str(arc)])
    assert fixed.exit_code == 0 and "repaired sha256:" in fixed.stdout, fixed.output
    assert runner.invoke(app, ["verify", "--archive", str(arc)]).exit_code == 0
    nowhere = runner.invoke(app, ["verify", "--archive", str(tmp_path / "none")])
    assert nowhere.exit_code == 2 and "no musicark archive" in nowhere.output
    sample = runner.invoke(app, ["verify", "store", "--archive", str(arc), "--sample", "200%"])
    assert sample.exit_code == 2 and "not a share" in sample.output
    scope = runner.invoke(app, ["verify", "everything", "--archive", str(arc)])
    assert scope.exit_code == 2


def test_cli_on_a_damaged_catalog_and_purge(base: Path, tmp_path: Path) -> None:
    arc = copy_archive(base, tmp_path / "a")
    flip(_store_files(arc, REBUILDABLE)[0])
    assert runner.invoke(app, ["verify", "store", "--archive", str(arc)]).exit_code == 1
    assert runner.invoke(app, ["repair", "--archive", str(arc)]).exit_code == 0
    damaged = arc / "store" / "damaged"
    assert len(list(damaged.iterdir())) == 1
    purged = runner.invoke(app, ["repair", "--purge-damaged", "--archive", str(arc)])
    assert purged.exit_code == 0 and "purged 1 damaged" in purged.stdout
    assert not damaged.exists()
    Archive.open(arc).close()
    catalog = arc / "catalog.sqlite"
    catalog.write_bytes(b"this is no database" * 1000)
    store = runner.invoke(app, ["verify", "store", "--archive", str(arc)])
    assert store.exit_code == 2 and "repair --catalog-from" in store.output
    whole = runner.invoke(app, ["verify", "--archive", str(arc), "--json"])
    assert whole.exit_code == 1
    assert "catalog is damaged" in json.loads(whole.stdout)["notes"]["skipped"]
    fixed = runner.invoke(app, ["repair", "--catalog-from", "r1", "--archive", str(arc)])
    assert fixed.exit_code == 0, fixed.output
    assert "the snapshot lacks" in fixed.stdout
    assert runner.invoke(app, ["verify", "--archive", str(arc)]).exit_code == 0


def test_cli_verifies_a_shard_alone_with_its_torrent(base: Path, tmp_path: Path) -> None:
    release = base / "releases" / "r1"
    shard = sorted((release / "shards").iterdir())[0]
    torrent = release / "torrents" / f"{shard.name}.torrent"
    alone = tmp_path / shard.name
    subprocess.run(["cp", "-r", str(shard), str(alone)], check=True)
    ok = runner.invoke(app, ["verify", "--bag", str(alone), "--torrent", str(torrent),
                             "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["files"] == len([p for p in alone.rglob("*") if p.is_file()])
    payload = sorted((alone / "data").rglob("*.*"))[0]
    payload.write_bytes(payload.read_bytes()[:-1] + b"\0")
    bad = runner.invoke(app, ["verify", "--bag", str(alone), "--torrent", str(torrent),
                              "--json"])
    assert bad.exit_code == 1
    kinds = {(p["path"], p["kind"]) for p in json.loads(bad.stdout)["problems"]}
    assert (str(payload), "checksum") in kinds
    assert any("v1 piece" in p["detail"] for p in json.loads(bad.stdout)["problems"])


def test_a_second_release_verifies_with_the_first_in_its_list(base: Path,
                                                               tmp_path: Path) -> None:
    from archive_fixture import SEED, TRACKS
    from musicark.ingest.pipeline import ingest
    from musicark.release import ReleaseOptions, create_release
    from musicark.synth_audio import write_audio

    arc = copy_archive(base, tmp_path / "a")
    with Archive.open(arc) as archive:
        music = write_audio(tmp_path / "more", 12, seed=SEED, catalog_tracks=TRACKS)
        ingest(archive, music, workers=2)
        create_release(archive, "r2", ReleaseOptions(buckets="50,20,0", all_matched=True))
    report = run_verify(arc, "releases", workers=1)
    assert report.exit_code == 0, [p.line() for p in report.problems]
    assert report.notes["releases"] == 2
    listing = arc / "releases" / "r2" / "torrents.json"
    text = listing.read_text()
    listing.write_text(text.replace('"release": "r1"', '"release": "r0"', 1))
    damaged = run_verify(arc, "releases", workers=1)
    assert any(p.path == str(listing) and "release is 'r0'" in p.detail
               for p in damaged.problems), [p.line() for p in damaged.problems]


def test_release_create_treats_a_size_mismatch_as_damage(base: Path, tmp_path: Path) -> None:
    from musicark.errors import FixityError
    from musicark.release import ReleaseOptions, create_release

    arc = copy_archive(base, tmp_path / "a")
    with Archive.open(arc) as archive:
        conn = archive.conn
        for table in ("release_files", "release_tracks", "torrents", "releases"):
            conn.execute(f"DELETE FROM {table}")  # as if nothing was released yet
        sha = conn.execute("SELECT f.sha256 FROM track_files tf JOIN files f "
                           "ON f.rowid = tf.file_rowid ORDER BY f.rowid").fetchone()[0]
        path = Store(archive.store_path).path_for(sha)
        path.chmod(0o644)
        with open(path, "ab") as fh:
            fh.write(b"\0")
        options = ReleaseOptions(buckets="50,20,0", all_matched=True)
        with pytest.raises(FixityError, match="marked damaged"):
            create_release(archive, "again", options)
        assert conn.execute("SELECT status, fixity FROM files WHERE sha256 = ?",
                            (sha,)).fetchone() == ("damaged", "size")
        released = create_release(archive, "again", options)  # without the damaged file
        assert not conn.execute(
            "SELECT 1 FROM release_files rf JOIN files f ON f.rowid = rf.file_rowid "
            "WHERE f.sha256 = ?", (sha,)).fetchone()
        assert released.selection["files"] >= 1


def test_the_verify_package_imports_no_ui_library() -> None:
    code = ("import sys, musicark.verify, musicark.verify.run, musicark.verify.repair, "
            "musicark.verify.catalog_restore\n"
            "bad = [m for m in ('typer', 'rich', 'fastapi', 'jinja2') if m in sys.modules]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    env = {**os.environ, "PYTHONPATH": SRC}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tagging_is_deterministic_so_tagged_copies_can_be_rebuilt(base: Path,
                                                                   tmp_path: Path) -> None:
    """Every tagged copy (Opus, MP3, AAC), tagged again from its original with the recorded
    fields, gives the very bytes the ledger holds: what repair relies on."""
    from musicark.ingest.store import sha256_file
    from musicark.verify.rebuild import recipes

    with Archive.open(base, readonly=True) as archive:
        store = Store(archive.store_path)
        rows = archive.conn.execute(
            "SELECT d.output_file, o.sha256, i.codec FROM derivations d "
            "JOIN files o ON o.rowid = d.output_file JOIN files i ON i.rowid = d.input_file "
            "WHERE d.kind = 'tagged'").fetchall()
        assert {codec for _, _, codec in rows} >= {"opus", "mp3", "aac"}
        for n, (rowid, sha, _) in enumerate(rows):
            retag = [write for how, write in recipes(archive.conn, store, rowid)
                     if how.startswith("tagged again")]
            assert len(retag) == 1
            out = tmp_path / f"copy{n}"
            retag[0](out)
            assert sha256_file(out)[0] == sha
