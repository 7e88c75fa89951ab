"""`catalog import` on input nobody meant to give it: devices, FIFOs, text SQLite cannot
hold, numbers no column holds, CSV in another encoding or with absurd fields. Each gets one
clear line (exit 6 for a refused source, a bad row with its line otherwise), never a
traceback, and a refused source leaves the catalog as it was."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.errors import BadSource


def cli(archive: Archive, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI in its own process, with 1.5 GiB of address space: a read that never
    ends fails fast instead of taking the machine's memory."""
    cmd = shlex.join([sys.executable, "-m", "musicark", *args, "--archive", str(archive.path)])
    return subprocess.run(["bash", "-c", f"ulimit -v 1500000; exec {cmd}"], capture_output=True,
                          text=True, timeout=timeout)


def counts(archive: Archive) -> tuple[int, ...]:
    return tuple(archive.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("sources", "tracks", "albums", "artists"))


def one_error_line(run: subprocess.CompletedProcess) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    return lines[0]


# -- 1. only regular files --------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["table", "api-json", "musicbrainz-json", "musicbrainz"])
def test_dev_zero_is_refused_not_read(archive: Archive, fmt: str) -> None:
    run = cli(archive, "catalog", "import", "--format", fmt, "/dev/zero", "--name", "z")
    assert run.returncode == 6
    assert "not a regular file (character device)" in one_error_line(run)
    assert counts(archive) == (0, 0, 0, 0)


@pytest.mark.parametrize("fmt", ["table", "api-json", "musicbrainz-json"])
def test_a_fifo_is_refused_not_waited_on(archive: Archive, tmp_path: Path, fmt: str) -> None:
    fifo = tmp_path / "catalog.jsonl"
    os.mkfifo(fifo)
    run = cli(archive, "catalog", "import", "--format", fmt, str(fifo), timeout=60)
    assert run.returncode == 6
    assert "not a regular file (FIFO)" in one_error_line(run)


def test_every_file_read_inside_a_dump_folder_is_regular(archive: Archive,
                                                         tmp_path: Path) -> None:
    mbdump = tmp_path / "dump" / "mbdump"
    mbdump.mkdir(parents=True)
    (mbdump / "artist").symlink_to("/dev/zero")
    with pytest.raises(BadSource, match=r"artist: not a regular file \(character device\)"):
        import_source(archive, "musicbrainz", tmp_path / "dump")
    folder = tmp_path / "mbjson"
    folder.mkdir()
    (folder / "a.json").write_text('{"id": "a1", "name": "A", "sort-name": "A"}')
    os.mkfifo(folder / "b.jsonl")
    with pytest.raises(BadSource, match=r"b.jsonl: not a regular file \(FIFO\)"):
        import_source(archive, "musicbrainz-json", folder)
    assert counts(archive) == (0, 0, 0, 0)
