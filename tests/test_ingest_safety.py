"""Ingest on files that are not what they seem: devices, FIFOs, sockets, audio FFmpeg cannot
open, files that change while read, paths given three ways, --link, Ctrl-C."""

from __future__ import annotations

import csv
import faulthandler
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.ingest import examine as examine_module
from musicark.ingest import pipeline as pipeline_module
from musicark.ingest.examine import examine
from musicark.ingest.ledger import list_skipped
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import SourceChanged, Store, sha256_file

PAUSED = Path(__file__).with_name("paused_ingest.py")  # an ingest that stops on cue

SONG = Path("music") / "fma" / "000002.mp3"


def _rows(arc: Archive) -> dict[str, tuple]:
    """path name → (status, reason, sha256, path reason) for every path ingest saw."""
    return {Path(p).name: (status, reason, sha, path_reason) for p, status, reason, sha,
            path_reason in arc.conn.execute(
                "SELECT p.path, f.status, f.reason, f.sha256, p.reason FROM file_paths p "
                "LEFT JOIN files f ON f.rowid = p.file_rowid")}


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "musicark", *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, **kwargs)


def _limit_file_size() -> None:
    # Before the fix, /dev/zero filled a .part file until the disk was full: cap the damage.
    resource.setrlimit(resource.RLIMIT_FSIZE, (200 << 20, 200 << 20))


def test_devices_fifos_and_sockets_are_not_read(tmp_path: Path, testdata: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(testdata / "audio" / SONG, src / "song.mp3")
    os.symlink("/dev/zero", src / "zero.mp3")
    os.symlink("/dev/null", src / "null.flac")
    os.mkfifo(src / "pipe.ogg")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(src / "sock.wav"))
    arc = tmp_path / "arc"
    Archive.create(arc).close()
    try:
        started = time.monotonic()
        run = _cli("ingest", str(src), "--archive", str(arc), "--workers", "2", "--json",
                   timeout=120, preexec_fn=_limit_file_size)
        took = time.monotonic() - started
    finally:
        server.close()
    assert run.returncode == 9, run.stderr  # 9: some paths were not read (listed)
    report = json.loads(run.stdout)
    assert report["quarantined_by_reason"] == {"not a regular file": 4}
    assert report["not_walked_or_read_by_kind"] == {"special": 4}
    assert took < 60
    with Archive.open(arc) as opened:
        rows = _rows(opened)
        assert rows["song.mp3"][0] == "ok"
        kinds = {"zero.mp3": "character device", "null.flac": "character device",
                 "pipe.ogg": "FIFO", "sock.wav": "socket"}
        for name, kind in kinds.items():
            status, reason, sha, _ = rows[name]
            assert (status, sha) == ("quarantined", None), name
            assert reason.startswith(f"not a regular file ({kind})"), (name, reason)
        assert not list((arc / "store" / "tmp").glob("*.part"))
        # The rerun sees them again (they hold no content to remember) without new rows.
        before = opened.conn.execute("SELECT count(*) FROM files").fetchone()[0]
    again = _cli("ingest", str(src), "--archive", str(arc), "--workers", "1", timeout=120,
                 preexec_fn=_limit_file_size)
    assert again.returncode == 9, again.stderr
    assert "not a regular file" in again.stdout
    assert "4 paths not walked or read (4 special)" in again.stderr
    with Archive.open(arc) as opened:
        assert opened.conn.execute("SELECT count(*) FROM files").fetchone()[0] == before


def test_a_path_quarantined_without_content_is_cleared_when_it_holds_audio(
        archive: Archive, tmp_path: Path, testdata: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    os.mkfifo(src / "later.mp3")
    assert ingest(archive, [src], workers=1).quarantined == {"not a regular file": 1}
    assert ingest(archive, [src], workers=1).quarantined == {"not a regular file": 1}
    assert archive.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 1  # one row
    os.remove(src / "later.mp3")
    shutil.copy(testdata / "audio" / SONG, src / "later.mp3")
    assert ingest(archive, [src], workers=1).ingested == 1
    assert archive.conn.execute("SELECT status, sha256 IS NULL FROM files").fetchall() == [
        ("ok", 0)]


def test_a_path_swapped_for_a_fifo_after_the_scan_is_not_read(tmp_path: Path) -> None:
    """The check is on the opened file: a FIFO swapped in after a stat never blocks."""
    fifo = tmp_path / "swapped.ogg"
    os.mkfifo(fifo)
    store = Store(tmp_path / "store")
    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    from musicark.ingest.store import NotRegularFile

    with pytest.raises(NotRegularFile, match="FIFO"):
        store.put(fifo, scanned=os.stat(regular))


def _vorbis_ffmpeg_cannot_open(testdata: Path, dest: Path) -> Path:
    """A real Ogg Vorbis file (its identification page intact; `file` says "Ogg data,
    Vorbis audio") whose second page lost its capture pattern: FFmpeg cannot open it."""
    data = (testdata / "audio" / "music" / "librosa-data" /
            "147793__setuniman__sweet-waltz-0i-22mi.hq.ogg").read_bytes()
    second = data.index(b"OggS", 4)
    dest.write_bytes(data[:second] + b"XggS" + data[second + 4:])
    return dest


def test_ogg_vorbis_ffmpeg_cannot_open_is_stored_and_quarantined(
        archive: Archive, tmp_path: Path, testdata: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    broken = _vorbis_ffmpeg_cannot_open(testdata, src / "vorbis.bin")
    (src / "notes.txt").write_text("a shopping list")
    report = ingest(archive, [src], workers=1)
    rows = _rows(archive)
    status, reason, sha, _ = rows["vorbis.bin"]
    assert status == "quarantined" and sha == sha256_file(broken)[0]
    assert reason.startswith("no decodable audio (Ogg container)")
    assert Store(archive.store_path).has(sha)
    assert report.skipped == 1 and report.quarantined == {"no decodable audio": 1}
    assert [(Path(r["path"]).name, r["reason"].split(":")[0])
            for r in list_skipped(archive)] == [("notes.txt", "not audio")]


# Signs of audio the test knows on its own, from the corpus manifest (what ffprobe and
# mutagen recognise) and common names, independent of musicark's signature table.
EXTENSIONS = {".mp3", ".flac", ".ogg", ".opus", ".spx", ".m4a", ".m4b", ".mp4", ".3g2", ".aac",
              ".wma", ".ape", ".wv", ".mpc", ".dsf", ".dff", ".tak", ".tta", ".ofr", ".ofs",
              ".aif", ".wav", ".ac3", ".eac3", ".mid", ".oggflac", ".oggtheora", ".id3",
              ".apev2"}


def test_every_file_with_a_sign_of_audio_is_kept(archive: Archive, testdata: Path) -> None:
    corpus = testdata / "audio" / "mutagen"
    text = (corpus / "manifest.csv").read_text(encoding="utf-8", errors="replace")
    manifest = {m["path"]: m for m in csv.DictReader(text.splitlines())}
    ingest(archive, [corpus], workers=2, fingerprint=False, match=False)
    rows = _rows(archive)
    files = sorted(p.name for p in corpus.iterdir() if p.is_file())
    assert sorted(rows) == files
    signless = []
    for name in files:
        m = manifest.get(name, {})
        mutagen = m.get("mutagen_type", "")
        sign = (m.get("codec") or (mutagen and not mutagen.startswith("ERROR"))
                or Path(name).suffix.lower() in EXTENSIONS)
        status, reason, sha, path_reason = rows[name]
        if sign:
            assert status in ("ok", "quarantined"), (name, path_reason)
            assert sha == m["sha256"], name
            assert status == "ok" or reason, name
        else:
            signless.append(name)
            assert status is None and path_reason.startswith("not audio"), name
    assert signless == ["COPYING.mutagen", "README.md", "image.jpg", "manifest.csv"]
    listed = {Path(r["path"]).name: r["reason"] for r in list_skipped(archive)}
    assert sorted(listed) == signless
    quarantined = [n for n, row in rows.items() if row[0] == "quarantined"]
    assert len(quarantined) >= 38  # FFmpeg fails on these; none is dropped
    assert rows["sample.mid"][1].startswith("no decodable audio (MIDI)")
    assert rows["64bit.mp4"][1].startswith("no decodable audio (MP4/QuickTime container)")


def test_a_file_rewritten_while_read_is_reported_as_changed(
        tmp_path: Path, testdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    song = tmp_path / "song.mp3"
    shutil.copy(testdata / "audio" / SONG, song)
    real_probe = examine_module.probe

    def rewritten_meanwhile(path, **kwargs):
        data = song.read_bytes()
        song.write_bytes(data[: len(data) // 2])  # another program rewrites it
        return real_probe(path, **kwargs)

    monkeypatch.setattr(examine_module, "probe", rewritten_meanwhile)
    result = examine(os.fsencode(song), str(tmp_path / "store"))
    assert result.status == "quarantined"
    assert result.reason.startswith("changed while reading (size"), result.reason
    assert result.sha256 is None
    assert not list((tmp_path / "store").rglob("sha256/*/*/*"))  # nothing half stored

    def grows_meanwhile(path, **kwargs):
        facts = real_probe(path, **kwargs)
        with open(song, "ab") as fh:
            fh.write(b"\0" * 4096)
        return facts

    shutil.copy(testdata / "audio" / SONG, song)
    monkeypatch.setattr(examine_module, "probe", grows_meanwhile)
    result = examine(os.fsencode(song), str(tmp_path / "store"))
    assert result.reason.startswith("changed while reading (size"), result.reason


def test_the_store_reads_no_more_than_the_size_at_scan_time(tmp_path: Path) -> None:
    src = tmp_path / "growing"
    src.write_bytes(b"a" * 1000)
    fd = os.open(src, os.O_RDONLY)
    try:
        with pytest.raises(SourceChanged, match="grew past its 600 bytes"):
            Store._copy(fd, tmp_path / "dst", 600)
    finally:
        os.close(fd)
    scanned = os.stat(src)
    with open(src, "ab") as fh:
        fh.write(b"more")
    with pytest.raises(SourceChanged, match="size 1,000 became 1,004"):
        Store(tmp_path / "store").put(src, scanned=scanned)


def test_paths_are_absolute_and_normalized(archive: Archive, tmp_path: Path, testdata: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "x" / "rpsrc"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(testdata / "audio" / SONG, folder / "a.mp3")
    shutil.copy(testdata / "audio" / "mutagen" / "no-tags.flac", folder / "sub" / "b.flac")
    monkeypatch.chdir(tmp_path / "x")
    first = ingest(archive, [Path("rpsrc")], workers=1)
    assert first.ingested == 2
    assert ingest(archive, [folder], workers=1).unchanged == 2
    monkeypatch.chdir(tmp_path)
    third = ingest(archive, [Path("x/rpsrc"), Path("x/./rpsrc/../rpsrc/")], workers=1)
    assert (third.examined, third.unchanged) == (0, 2)
    paths = sorted(p for (p,) in archive.conn.execute("SELECT path FROM file_paths"))
    assert paths == [str(folder / "a.mp3"), str(folder / "sub" / "b.flac")]


def test_store_objects_are_read_only_also_with_link(archive: Archive, tmp_path: Path,
                                                    testdata: Path) -> None:
    linked = tmp_path / "linked.mp3"
    shutil.copy(testdata / "audio" / SONG, linked)
    copied = tmp_path / "copied.flac"
    shutil.copy(testdata / "audio" / "mutagen" / "no-tags.flac", copied)
    for src in (linked, copied):
        src.chmod(0o644)  # as a user's files are (the shared test material is read-only)
    ingest(archive, [linked], link=True, workers=1)
    ingest(archive, [copied], workers=1)
    store = Store(archive.store_path)
    for src in (linked, copied):
        stored = store.path_for(sha256_file(src)[0])
        assert stored.stat().st_mode & 0o777 == 0o444, src.name
    stored = store.path_for(sha256_file(linked)[0])
    if os.stat(stored).st_ino == os.stat(linked).st_ino and os.geteuid() != 0:
        # A hardlink: an in-place write to the source can no longer change the store.
        with pytest.raises(PermissionError), open(linked, "r+b"):
            pass
    run = _cli("ingest", "--help")
    assert "trusts the source to stay unchanged" in " ".join(run.stdout.split())


def test_ctrl_c_says_what_it_kept(tmp_path: Path, testdata: Path) -> None:
    src = tmp_path / "tree"
    music = testdata / "audio" / "music"
    for i, f in enumerate(sorted(music.rglob("*.ogg")) * 2):
        dest = src / f"d{i % 4}" / f"{i:02d}-{f.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
        if i >= len(list(music.rglob("*.ogg"))):
            with open(dest, "ab") as fh:  # distinct content, same audio
                fh.write(i.to_bytes(4, "big"))
    arc = tmp_path / "arc"
    Archive.create(arc).close()
    args = ["ingest", str(src), "--archive", str(arc), "--workers", "2"]
    # Stopped once 3 files are recorded (of 64), then interrupted there: not after a delay.
    proc = subprocess.Popen([sys.executable, str(PAUSED), "3", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline() == "paused\n", "the ingest ended before its third file"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "nothing partial was kept" not in stderr
    said = re.search(r"interrupted: ([\d,]+) files recorded; (.*)", " ".join(stderr.split()))
    assert said, stderr
    with Archive.open(arc) as opened:
        recorded = opened.conn.execute("SELECT count(*) FROM file_paths").fetchone()[0]
        unrecorded = Store(arc / "store").unrecorded(opened.conn)
        event = opened.conn.execute("SELECT outcome FROM events WHERE kind = 'ingest.run'")
        assert event.fetchone()[0] == "interrupted"
    assert int(said.group(1).replace(",", "")) == recorded == 3  # where it was stopped
    if unrecorded:
        assert said.group(2).startswith(f"{unrecorded:,} store objects without a ledger row "
                                        "will be adopted by the next run")
    else:
        assert said.group(2).startswith("every store object has its ledger row")
    assert recorded < sum(1 for p in src.rglob("*") if p.is_file())
    assert not list((arc / "store" / "tmp").glob("*.part"))
    finish = subprocess.run([sys.executable, "-m", "musicark", *args], capture_output=True,
                            text=True)
    assert finish.returncode == 0, finish.stderr
    with Archive.open(arc) as opened:
        assert Store(arc / "store").unrecorded(opened.conn) == 0  # adopted


def _examine_crashing_on_the_clip(raw, *args, crashed=None, **kwargs):
    """A decoder that segfaults on one file, as FFmpeg might on crafted input. Handed to the
    runner in place of `examine`: workers import it from here (they start from a fork
    server, so a patch of a module's global in this process would not reach them)."""
    if os.path.basename(raw) == b"crash.m4a" and crashed is None:
        faulthandler.disable()  # pytest's dump of the crash is noise in the log
        os.kill(os.getpid(), signal.SIGSEGV)
    return examine(raw, *args, crashed=crashed, **kwargs)


def test_a_file_that_crashes_its_worker_is_stored_and_quarantined(
        archive: Archive, tmp_path: Path, testdata: Path, monkeypatch) -> None:
    """The worker dies on it: the files in flight run again alone, this one is stored and
    quarantined with how its worker died, and the ingest goes on with the others."""
    src = tmp_path / "in"
    src.mkdir()
    clips = sorted((testdata / "audio/music/espressif-samples-kevin-macleod").glob("*.[ao]*"))
    for n, clip in enumerate(clips):
        shutil.copy(clip, src / f"{n}{clip.suffix}")
    crash = src / "crash.m4a"
    shutil.copy(testdata / "audio/music/espressif-samples-kevin-macleod/"
                "gs-16b-1c-44100hz.m4a", crash)
    monkeypatch.setattr(pipeline_module, "examine", _examine_crashing_on_the_clip)
    report = ingest(archive, [src], workers=2, match=False)
    rows = _rows(archive)
    status, reason, sha, _ = rows["crash.m4a"]
    assert (status, reason) == ("quarantined",
                                "the decoder crashed (worker died: killed by SIGSEGV)")
    assert sha == sha256_file(crash)[0] and Store(archive.store_path).has(sha)
    assert len(clips) == 2 and report.examined == len(clips) + 1
    assert all(rows[f"{n}{c.suffix}"][0] == "ok" for n, c in enumerate(clips)), rows


def _examine_hanging_on_the_clip(raw, *args, crashed=None, **kwargs):
    """A decoder that never returns on one file (a loop on crafted input)."""
    if os.path.basename(raw) == b"hang.m4a" and crashed is None:
        threading.Event().wait()
    return examine(raw, *args, crashed=crashed, **kwargs)


def test_a_file_whose_decoder_hangs_is_stored_and_quarantined(
        archive: Archive, tmp_path: Path, testdata: Path, monkeypatch) -> None:
    """Past its time budget the worker is killed: the ingest finishes, the file is stored
    and quarantined with how long it was given, and every other file is ingested."""
    src = tmp_path / "in"
    src.mkdir()
    clips = sorted((testdata / "audio/music/espressif-samples-kevin-macleod").glob("*.[ao]*"))
    for n, clip in enumerate(clips):
        shutil.copy(clip, src / f"{n}{clip.suffix}")
    hang = src / "hang.m4a"
    shutil.copy(testdata / "audio/music/espressif-samples-kevin-macleod/"
                "gs-16b-1c-44100hz.m4a", hang)
    monkeypatch.setenv("MUSICARK_BUDGET_FLOOR", "5")  # the files that decode do in time
    monkeypatch.setenv("MUSICARK_BUDGET_PER_MIB", "0")
    monkeypatch.setattr(pipeline_module, "examine", _examine_hanging_on_the_clip)
    report = ingest(archive, [src], workers=2, match=False)
    rows = _rows(archive)
    status, reason, sha, _ = rows["hang.m4a"]
    assert (status, reason) == ("quarantined", "the decoder hung after 5 s")
    assert sha == sha256_file(hang)[0] and Store(archive.store_path).has(sha)
    assert report.examined == len(clips) + 1
    assert all(rows[f"{n}{c.suffix}"][0] == "ok" for n, c in enumerate(clips)), rows
