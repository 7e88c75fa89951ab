"""Nothing skipped in silence (issue #25): folders that cannot be walked, files that cannot be
read, names that differ only by an undecodable byte, and the archive inside the folder."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.ingest import examine as examine_module
from musicark.ingest.ledger import list_files, list_runs, list_skipped
from musicark.ingest.pipeline import ingest

SONG = Path("music") / "fma" / "000002.mp3"
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _song(testdata: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(testdata / "audio" / SONG, dest)
    return dest


def _without_root_file_access() -> None:
    """In the child, before exec: drop the two capabilities that let root read any folder
    (mode 000 stops root otherwise); the exec'd program then runs without them."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "musicark", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=_without_root_file_access if os.geteuid() == 0 else None)


def _skipped(arc: Path, *args: str) -> dict[str, dict]:
    run = subprocess.run([sys.executable, "-m", "musicark", "ledger", "--skipped", "--json",
                          "--archive", str(arc), *args], capture_output=True, text=True,
                         timeout=120, check=True)
    return {r["path"]: r for r in json.loads(run.stdout)}


def test_an_unreadable_folder_is_reported_with_its_reason_and_exit_code(
        tmp_path: Path, testdata: Path) -> None:
    """Mode 000, for real: as root the test drops CAP_DAC_OVERRIDE/READ_SEARCH first."""
    src = tmp_path / "in"
    _song(testdata, src / "a.mp3")
    _song(testdata, src / "locked" / "b.mp3")
    arc = tmp_path / "arc"
    Archive.create(arc).close()
    (src / "locked").chmod(0)
    try:
        run = _cli("ingest", str(src), "--archive", str(arc), "--workers", "1")
        assert run.returncode == 9, (run.stdout, run.stderr)
        assert "1 paths not walked or read (1 unwalkable)" in run.stderr
        assert "0 not audio, 1 not walked or read" in run.stdout
        assert f"{src / 'locked'}: folder not walked: Permission denied" in run.stderr
        assert "Traceback" not in run.stderr
        listed = _skipped(arc)
        assert listed[str(src / "locked")]["kind"] == "unwalkable"
        assert listed[str(src / "locked")]["reason"] == "folder not walked: Permission denied"
        # The same folder given directly: refused as a usage error (exit 2), no run.
        again = _cli("ingest", str(src / "locked"), "--archive", str(arc), "--workers", "1")
        assert again.returncode == 2, (again.stdout, again.stderr)
        assert "is not readable" in again.stderr and "Traceback" not in again.stderr
    finally:
        (src / "locked").chmod(0o755)
    unknown = subprocess.run([sys.executable, "-m", "musicark", "ledger", "--skipped", "--run",
                              "99", "--archive", str(arc)], capture_output=True, text=True,
                             timeout=120)
    assert unknown.returncode == 7 and "no ingest run 99" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    with Archive.open(arc) as opened:
        runs = list_runs(opened)
        assert [(r["run"], r["not_walked_or_read"]) for r in runs] == [(1, 1)]
        assert [r["path"] for r in list_skipped(opened, run=1)] == [str(src / "locked")]
        # once readable, a rerun walks it and says nothing is missing
        report = ingest(opened, [src], workers=1)
        assert (report.exit_code, report.duplicates) == (0, 1)
        assert list_skipped(opened) == []


def test_a_sub_folder_that_cannot_be_listed_is_counted(
        archive: Archive, tmp_path: Path, testdata: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, in process, whatever the user: os.walk's listing fails for one folder."""
    src = tmp_path / "in"
    _song(testdata, src / "a" / "one.mp3")
    _song(testdata, src / "b" / "two.mp3")
    real = os.scandir
    refused = os.fsencode(src / "b")

    def scandir(path=b"."):
        if os.fsencode(path) == refused:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = ingest(archive, [src], workers=1)
    assert report.exit_code == 9
    assert report.as_dict()["not_walked_or_read_by_kind"] == {"unwalkable": 1}
    assert report.as_dict()["not_walked_or_read_first"] == [
        f"unwalkable: {src / 'b'}: folder not walked: Permission denied"]
    assert (report.ingested, report.duplicates) == (1, 0)


def test_unreadable_vanished_and_special_files_are_listed_each_run(
        archive: Archive, tmp_path: Path, testdata: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    _song(testdata, src / "good.mp3")
    _song(testdata, src / "secret.mp3")
    os.mkfifo(src / "pipe.ogg")
    os.symlink("gone.mp3", src / "dangling.mp3")
    real = examine_module.open_regular

    def no_permission(raw):
        if raw.endswith(b"secret.mp3"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(raw)

    monkeypatch.setattr(examine_module, "open_regular", no_permission)
    for run in (1, 2):  # the rerun tries them again and reports them again
        report = ingest(archive, [src], workers=1)
        assert report.exit_code == 9
        assert report.not_walked == {"unreadable": 1, "special": 1, "vanished": 1}
        listed = {Path(r["path"]).name: (r["kind"], r["reason"], r["run"])
                  for r in list_skipped(archive)}
        assert listed == {
            "secret.mp3": ("unreadable", "permission denied", run),
            "pipe.ogg": ("special", "not a regular file (FIFO); not read", run),
            "dangling.mp3": ("vanished", "cannot stat: No such file or directory", run)}
    assert report.unchanged == 1  # good.mp3


def test_names_differing_only_by_an_undecodable_byte_are_two_paths(
        archive: Archive, tmp_path: Path, testdata: Path) -> None:
    src = tmp_path / "in"
    raw = os.path.join(os.fsencode(src), b"y\xff.ogg")  # the byte 0xFF
    _song(testdata, Path(os.fsdecode(raw)))
    literal = src / "y\\xff.ogg"  # a backslash, an x, two letters
    literal.write_bytes(b"OggS" + bytes(200))  # another file
    fifo = os.path.join(os.fsencode(src), b"z\xfe.ogg")
    os.mkfifo(fifo)
    first = ingest(archive, [src], workers=1)
    assert (first.ingested, first.quarantined.total(), first.duplicates) == (1, 2, 0)
    rows = archive.conn.execute("SELECT path, file_rowid FROM file_paths").fetchall()
    assert sorted(p for p, _ in rows if isinstance(p, str)) == [str(literal)]
    assert sorted(p for p, _ in rows if isinstance(p, bytes)) == [raw, fifo]
    assert len({f for _, f in rows}) == 3
    [skip] = list_skipped(archive)
    assert (skip["path"], skip["path_hex"]) == (str(src / "z\\xfe.ogg"), fifo.hex())
    assert json.dumps(archive.events())  # events name paths as text
    again = ingest(archive, [src], workers=1)
    assert (again.unchanged, again.examined) == (2, 1)  # the FIFO is tried again
    listed = list_files(archive, status="quarantined")[:1] + list_files(archive, status="ok")
    assert "y" in Path(listed[0]["path"]).name  # shown alike; path_hex tells them apart
    assert {r["path"] for r in listed} == {str(literal)}
    assert {r.get("path_hex") for r in listed} == {None, raw.hex()}


def test_migration_15_turns_escaped_paths_back_into_bytes(tmp_path: Path,
                                                           testdata: Path) -> None:
    src = tmp_path / "in"
    raw = os.path.join(os.fsencode(src), b"caf\xe9.mp3")
    _song(testdata, Path(os.fsdecode(raw)))
    (src / "notes\\xe9.txt").write_text("a literal backslash, not audio")
    arc_path = tmp_path / "arc"
    with Archive.create(arc_path) as arc:
        ingest(arc, [src], workers=1)
    # Make it an archive of schema 14: escaped text paths, the old note, no run tables.
    conn = sqlite3.connect(arc_path / "catalog.sqlite")
    escaped = raw.decode("utf-8", "backslashreplace")
    conn.execute("UPDATE file_paths SET path = ?, note = 'file name is not valid UTF-8 "
                 "(recorded with \\x escapes)' WHERE path = ?", (escaped, raw))
    conn.execute("DROP TABLE ingest_skips")
    conn.execute("DROP TABLE ingest_runs")
    for table in ("analysis_flags", "analyses", "album_loudness"):  # migration 16's
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version = 14")
    conn.commit()
    conn.close()
    with Archive.open(arc_path) as arc:
        paths = {p for (p,) in arc.conn.execute("SELECT path FROM file_paths")}
        assert raw in paths and escaped not in paths
        assert str(src / "notes\\xe9.txt") in paths  # a literal backslash stays text
        report = ingest(arc, [src], workers=1)
        assert (report.unchanged, report.examined) == (2, 0)


def test_the_archive_inside_the_folder_is_never_ingested(tmp_path: Path,
                                                         testdata: Path) -> None:
    src = tmp_path / "music"
    _song(testdata, src / "a.mp3")
    with Archive.create(src / "arc") as arc:
        first = ingest(arc, [src], workers=1)
        second = ingest(arc, [src], workers=1)  # now store/ holds a file, with the WAL
        own = ingest(arc, [src / "arc" / "store", src / "arc" / "catalog.sqlite"], workers=1)
        paths = [p for (p,) in arc.conn.execute("SELECT path FROM file_paths")]
        skipped = list_skipped(arc)
    assert paths == [str(src / "a.mp3")]
    for report in (first, second):
        assert report.archive_folder == str(src / "arc")
        assert report.exit_code == 0
    assert (second.unchanged, second.examined) == (1, 0)
    assert own.examined == 0
    assert {(r["path"], r["kind"]) for r in skipped} == {
        (str(src / "arc" / "store"), "archive"), (str(src / "arc" / "catalog.sqlite"),
                                                  "archive")}


def test_a_symlinked_folder_is_reported_not_followed(archive: Archive, tmp_path: Path,
                                                     testdata: Path) -> None:
    src = tmp_path / "in"
    _song(testdata, tmp_path / "elsewhere" / "x.mp3")
    src.mkdir()
    os.symlink(tmp_path / "elsewhere", src / "link")
    report = ingest(archive, [src], workers=1)
    assert (report.examined, report.symlinked_folders, report.exit_code) == (0, 1, 0)
    assert [(r["kind"], Path(r["path"]).name) for r in list_skipped(archive)] == [
        ("symlinked folder", "link")]
