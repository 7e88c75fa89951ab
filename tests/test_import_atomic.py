"""A killed import leaves nothing behind, and the same import then runs to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.errors import SourceExists
from musicark.synth import write_catalog


def _counts(path: Path) -> tuple:
    with Archive.open(path) as arc:
        return tuple(arc.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("sources", "tracks", "albums", "artists", "track_artists",
                               "track_fts", "markets"))


# The import runs in a process of its own and stops at a named step of the writer (its
# `phase` callback), with part of the import written into catalog.sqlite: a small page cache
# (set through the archive's connection) makes SQLite spill the open transaction's pages to
# the file. It says so on stdout and waits there to be killed, like a power cut.
KILLED_AT = """
import os, signal, sys
from musicark.archive import Archive
from musicark.catalog import import_source

path, src, stop_at = sys.argv[1:]
archive = Archive.open(path)
catalog = os.path.join(path, "catalog.sqlite")
before = os.path.getsize(catalog)

def progress(done, total):
    archive.conn.execute("PRAGMA cache_size = 64")  # pages of the transaction go to disk

def phase(name):
    if name == stop_at:
        print(before, os.path.getsize(catalog), os.path.exists(catalog + "-journal"),
              flush=True)
        signal.pause()

import_source(archive, "table", src, progress=progress, phase=phase)
print("finished", flush=True)
"""


@pytest.mark.parametrize("step", ["building indexes", "committing"])
def test_kill_during_import_leaves_no_half_source(tmp_path: Path, step: str) -> None:
    """Killed with rows (then every row, index and search entry, just before COMMIT)
    written into the catalog file: the next open rolls it all back."""
    src = tmp_path / "c.csv"
    write_catalog(src, 30_000, "table", seed=3)
    arc = Archive.create(tmp_path / "arc")
    arc.close()
    catalog = arc.path / "catalog.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_AT, str(arc.path), str(src), step],
                            stdout=subprocess.PIPE, text=True)
    said = proc.stdout.readline().split()  # blocks until the import reaches `step`
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(said) == 3, f"the import did not stop at {step!r}: {said}"
    before, during, journal = int(said[0]), int(said[1]), said[2] == "True"
    assert during > before and journal, "nothing of the import was on disk when it was killed"
    assert _counts(arc.path) == (0, 0, 0, 0, 0, 0, 0)
    assert catalog.stat().st_size == before and not Path(f"{catalog}-journal").exists()
    with Archive.open(arc.path) as arc2:
        assert arc2.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        report = import_source(arc2, "table", src)
    assert report.counts["tracks"] == 30_000
    assert _counts(arc.path)[:2] == (1, 30_000)
    assert not list(arc.path.glob(".*staging*"))


def test_error_mid_import_rolls_back(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    write_catalog(src, 500, "table")

    def explode(done: int, total: int | None) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        import_source(archive, "table", src, progress=explode)
    assert archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 0
    assert archive.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0


def test_replace_removes_the_old_search_entries(archive: Archive, tmp_path: Path) -> None:
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text("track_id,name,artists\n1,Zanzibar Nights,Quux\n2,Other,Quux\n")
    new.write_text("track_id,name,artists\n1,Yodel Morning,Quux\n")
    import_source(archive, "table", old, name="s")
    import_source(archive, "table", new, name="s", replace=True)

    def hits(word: str) -> int:
        return archive.conn.execute(
            "SELECT count(*) FROM track_fts WHERE track_fts MATCH ?", (word,)).fetchone()[0]

    assert (hits("zanzibar"), hits("other"), hits("yodel"), hits("quux")) == (0, 0, 1, 1)
    archive.conn.execute("INSERT INTO track_fts(track_fts) VALUES ('integrity-check')")


def test_same_name_needs_replace(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    write_catalog(src, 300, "table")
    import_source(archive, "table", src)
    with pytest.raises(SourceExists):
        import_source(archive, "table", src)
    report = import_source(archive, "table", src, replace=True)
    assert report.counts["tracks"] == 300
    assert archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 300
    assert archive.conn.execute("SELECT count(*) FROM track_fts").fetchone()[0] == 300
    # A second source with another name goes in beside it, indexes kept up to date.
    import_source(archive, "table", src, name="again")
    assert archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 600
    plan = archive.conn.execute(
        "EXPLAIN QUERY PLAN SELECT rowid FROM tracks WHERE isrc = 'X'").fetchall()
    assert "tracks_isrc" in str(plan)
