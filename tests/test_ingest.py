"""Ingest over the shared real audio, hostile files, duplicates, resume after kill, Dask."""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musicark.archive import Archive
from musicark.ingest.dedup import groups
from musicark.ingest.ledger import list_files
from musicark.ingest.paths import shown
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import Store, sha256_file

PAUSED = Path(__file__).with_name("paused_ingest.py")  # an ingest that stops on cue

# The audio stream of this file is 0.46 s inside a 0.75 s Theora video container; ffprobe and
# mutagen report the container's length, musicark the audio it decodes.
AUDIO_SHORTER_THAN_CONTAINER = {"sample_length.oggtheora"}


def _by_path(arc: Archive) -> dict[str, tuple]:
    rows = arc.conn.execute(
        "SELECT p.path, f.status, f.reason, f.codec, f.sample_rate, f.channels, f.duration_ms, "
        "f.sha256 FROM file_paths p LEFT JOIN files f ON f.rowid = p.file_rowid")
    return {Path(shown(p)).name if "/mutagen/" in shown(p) else shown(p): tuple(row)
            for p, *row in rows}


def test_shared_audio_is_ingested_or_quarantined(archive: Archive, testdata: Path) -> None:
    audio = testdata / "audio"
    report = ingest(archive, [audio], workers=2)
    assert report.examined == sum(1 for p in audio.rglob("*") if p.is_file())
    ledger = _by_path(archive)
    text = (audio / "mutagen" / "manifest.csv").read_text(encoding="utf-8", errors="replace")
    manifest = list(csv.DictReader(text.splitlines()))
    for m in manifest:
        status, reason, codec, rate, channels, duration, sha = ledger[m["path"]]
        if status is None:  # not audio: skipped, remembered
            assert not m["codec"], m["path"]
            continue
        assert sha == m["sha256"], m["path"]
        if status == "quarantined":
            assert reason, m["path"]
            continue
        assert status == "ok" and m["codec"], (m["path"], "ffprobe could not read it")
        assert (codec, rate, channels) == (m["codec"], int(m["sample_rate"]),
                                           int(m["channels"])), m["path"]
        if m["path"] in AUDIO_SHORTER_THAN_CONTAINER:
            continue
        # Within 1 %, or 100 ms for sub-second files (frame size and encoder delay), of
        # ffprobe's or mutagen's length.
        refs = [float(x) * 1000 for x in (m["ffprobe_duration_s"], m["mutagen_length_s"]) if x]
        assert any(abs(ref - duration) <= max(0.01 * ref, 100) for ref in refs), m["path"]
    # Truncated files are caught by the decode check.
    assert "truncated" in ledger["vbri.mp3"][1]
    assert ledger["emptyfile.mp3"][:2] == ("quarantined", "empty file")
    # Real music: all fine, licence read from the tags.
    ost = [row for p, row in ledger.items() if "singularity" in p and p.endswith(".ogg")]
    assert len(ost) == 16 and all(row[0] == "ok" for row in ost)
    licences = {r["licence"] for r in list_files(archive, limit=10_000)
                if "singularity" in (r["path"] or "")}
    assert licences == {"http://creativecommons.org/licenses/by-sa/3.0/"}
    # Near-duplicates: each librosa pair, and the excerpt in three codecs, group; nothing else.
    names = dict(archive.conn.execute(
        "SELECT f.rowid, p.path FROM files f JOIN file_paths p ON p.file_rowid = f.rowid"))
    found = sorted(sorted(Path(names[r]).name for r in group) for group in groups(archive))
    pairs = sorted(sorted([f.name, f.name.replace(".hq.ogg", ".ogg")])
                   for f in (audio / "music" / "librosa-data").glob("*.hq.ogg"))
    three = sorted(f.name for f in (audio / "music" / "espressif-samples-kevin-macleod")
                   .iterdir() if f.name.startswith("gs-"))
    assert found == sorted([*pairs, three])
    again = ingest(archive, [audio], workers=2)
    assert (again.examined, again.unchanged) == (0, report.examined)
    assert _by_path(archive) == ledger


def test_fingerprints_equal_fpcalc(archive: Archive, testdata: Path) -> None:
    if not shutil.which("fpcalc"):
        pytest.fail("fpcalc is missing: make installs Debian's libchromaprint-tools")
    music = testdata / "audio" / "music"
    files = [music / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
             music / "fma" / "000002.mp3",
             music / "espressif-samples-kevin-macleod" / "gs-16b-1c-44100hz.m4a"]
    ingest(archive, files, workers=1)
    for f in files:
        # fpcalc exits 3 after "Error decoding audio frame (End of file)" at the end of some
        # files, having printed the whole fingerprint; its output is what counts.
        out = subprocess.run(["fpcalc", "-raw", str(f)], capture_output=True, text=True).stdout
        assert "FINGERPRINT=" in out, f.name
        expected = [int(x) & 0xFFFFFFFF for x in out.split("FINGERPRINT=")[1].split(",")]
        blob = archive.conn.execute(
            "SELECT f.fingerprint FROM files f JOIN file_paths p ON p.file_rowid = f.rowid "
            "WHERE p.path = ?", (str(f),)).fetchone()[0]
        ours = np.frombuffer(blob, "<u4")
        assert len(ours) == len(expected), f.name
        # The same algorithm on audio decoded by another FFmpeg build (PyAV's vs Debian's):
        # bit-identical for most files, a few differing bits for some MP3s.
        differing = np.unpackbits((ours ^ np.array(expected, np.uint32)).view(np.uint8)).sum()
        assert differing / (32 * len(ours)) < 0.01, f.name


def test_duplicates_hostile_names_and_bad_files(archive: Archive, testdata: Path,
                                                tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    song = testdata / "audio" / "music" / "fma" / "000002.mp3"
    shutil.copy(song, src / "a.mp3")
    shutil.copy(song, src / "copy of a.mp3")
    os.makedirs(src / "deep" / "er")
    shutil.copy(song, src / "deep" / "er" / "same.bin")  # content, not the extension, counts
    weird = os.path.join(os.fsencode(src), b"caf\xe9-latin1.mp3")
    shutil.copy(song, os.fsdecode(weird))
    data = song.read_bytes()
    (src / "truncated.mp3").write_bytes(data[: len(data) // 3])
    (src / "notes.txt").write_text("not audio")
    (src / "random.mp3").write_bytes(random.Random(1).randbytes(50_000))
    (src / "empty.flac").write_bytes(b"")
    os.symlink("loop", src / "loop")
    report = ingest(archive, [src], workers=2)
    files = {r["sha256"]: r for r in list_files(archive, limit=100)}
    original = sha256_file(song)[0]
    assert files[original]["paths"] == 4 and files[original]["status"] == "ok"
    assert report.duplicates == 3
    rows = _by_path(archive)
    latin = str(src / "caf\\xe9-latin1.mp3")
    assert rows[latin][-1] == original
    note = archive.conn.execute("SELECT note FROM file_paths WHERE path = ?", (weird,))
    assert "not valid UTF-8" in note.fetchone()[0]
    assert report.path_notes
    assert rows[str(src / "truncated.mp3")][0] == "quarantined"
    assert rows[str(src / "notes.txt")][0] is None  # skipped: not audio
    assert rows[str(src / "random.mp3")][0] in (None, "quarantined")
    assert rows[str(src / "empty.flac")][:2] == ("quarantined", "empty file")
    assert rows[str(src / "loop")][:2] == ("quarantined", "symlink loop")
    store = Store(archive.store_path)
    assert store.has(original) and sha256_file(store.path_for(original))[0] == original


def _ledger_state(path: Path) -> tuple:
    with Archive.open(path) as arc:
        return (
            arc.conn.execute("SELECT count(*), count(DISTINCT sha256) FROM files").fetchone(),
            sorted(arc.conn.execute("SELECT path, file_rowid IS NULL FROM file_paths")),
        )


def test_resume_after_kill(tmp_path: Path, testdata: Path) -> None:
    """Kill a real ingest at known points, then finish: nothing doubled, nothing half."""
    src = tmp_path / "tree"
    music = testdata / "audio" / "music"
    for i, f in enumerate(sorted(music.rglob("*.ogg"))):
        dest = src / f"d{i % 4}" / f"{i:02d}-{f.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    arc_path = tmp_path / "arc"
    Archive.create(arc_path).close()
    cmd = [sys.executable, "-m", "musicark", "ingest", str(src), "--archive", str(arc_path),
           "--workers", "2"]
    # Each run is stopped at a known point (tests/paused_ingest.py) and killed there like a
    # power cut: at its n-th file (the ledger commits every 200 files, so none of these rows
    # is committed; the workers are still storing the files already handed to them), then
    # after the ledger's commit, before the near-duplicates are grouped.
    for stop in ("1", "5", "12", "24", "grouping near-duplicates"):
        if stop == "grouping near-duplicates":
            with Archive.open(arc_path) as arc:  # what the runs killed so far leave
                assert Store(arc_path / "store").unrecorded(arc.conn) > 0
        proc = subprocess.Popen([sys.executable, str(PAUSED), stop, *cmd[3:]],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True)
        stopped = proc.stdout.readline()
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers
        proc.wait()
        proc.stdout.close()
        assert stopped == "paused\n", f"the ingest ended before {stop!r}"
    files = sum(1 for p in src.rglob("*") if p.is_file())
    assert len(_ledger_state(arc_path)[1]) == files  # the last one had committed its rows
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (count, distinct), paths = _ledger_state(arc_path)
    expected = sorted(str(p) for p in src.rglob("*") if p.is_file())
    assert [p for p, _ in paths] == expected
    assert count == distinct  # one row per content
    store = Store(arc_path / "store")
    assert not list(store.tmp.glob("*.part")) if store.tmp.exists() else True
    with Archive.open(arc_path) as arc:
        for (sha,) in arc.conn.execute("SELECT sha256 FROM files WHERE sha256 IS NOT NULL"):
            assert sha256_file(store.path_for(sha))[0] == sha
    stored = [p for p in (arc_path / "store" / "sha256").rglob("*") if p.is_file()]
    assert len(stored) == distinct  # no store object without its ledger row


def test_dask_gives_the_same_ledger(tmp_path: Path, testdata: Path) -> None:
    from distributed import Client, LocalCluster

    files = sorted((testdata / "audio" / "music" / "librosa-data").glob("*.ogg"))[:6]
    pool = Archive.create(tmp_path / "pool")
    ingest(pool, files, workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        on_dask = Archive.create(tmp_path / "dask")
        ingest(on_dask, files, dask=client)
    query = ("SELECT sha256, codec, sample_rate, channels, duration_ms, fingerprint, tags, "
             "status FROM files ORDER BY sha256")
    assert pool.conn.execute(query).fetchall() == on_dask.conn.execute(query).fetchall()


def test_link_mode_and_huge_tags(archive: Archive, tmp_path: Path, testdata: Path) -> None:
    """--link stores without a byte copy where it can; 2 MB of tag text is quarantined."""
    from mutagen.flac import FLAC

    song = tmp_path / "song.mp3"
    shutil.copy(testdata / "audio" / "music" / "fma" / "000002.mp3", song)
    huge = tmp_path / "huge.flac"
    shutil.copy(testdata / "audio" / "mutagen" / "silence-44-s.flac", huge)
    tags = FLAC(huge)
    tags["comment"] = ["x" * 16_000] * 130
    tags.save()
    report = ingest(archive, [song, huge], link=True, workers=1)
    assert report.quarantined == {"tags too large": 1}
    reason = archive.conn.execute("SELECT reason FROM files WHERE status = 'quarantined'")
    assert reason.fetchone()[0].startswith("tags too large (2,080,")
    sha = sha256_file(song)[0]
    stored = Store(archive.store_path).path_for(sha)
    assert sha256_file(stored)[0] == sha
    same_inode = os.stat(stored).st_ino == os.stat(song).st_ino
    assert same_inode or os.stat(stored).st_nlink == 1  # hardlinked, or reflinked/copied


def test_orphans_are_kept_while_another_run_writes(archive: Archive, tmp_path: Path,
                                                   testdata: Path) -> None:
    """An ingest removes orphan temporary files, but not while a derive or tag is writing."""
    store = Store(archive.store_path)
    store.tmp.mkdir(parents=True, exist_ok=True)
    orphan = store.tmp / "left-by-a-kill.part"
    orphan.write_bytes(b"half")
    song = testdata / "audio" / "music" / "fma" / "000002.mp3"
    with store.writing():  # as a running derive holds it
        assert ingest(archive, [song], workers=1).orphans_removed == 0
    assert orphan.exists()
    other = tmp_path / "other.mp3"
    shutil.copy(song, other)
    assert ingest(archive, [other], workers=1).orphans_removed == 1
    assert not orphan.exists()
