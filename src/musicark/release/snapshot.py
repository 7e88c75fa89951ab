"""The catalog snapshot shipped with a release: `catalog.sqlite.zst`.

A copy of the catalog without what is private to the operator's machine (the paths files
were found at and those ingest runs skipped, the event log, source file locations) or cheap
to rebuild (fingerprint terms), compressed with zstd (multi-threaded zstd output does not
depend on the thread count, so the same catalog gives the same bytes).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import zstandard

LEVEL = 12
PRIVATE = ("DROP TABLE IF EXISTS file_paths", "DROP TABLE IF EXISTS events",
           "DROP TABLE IF EXISTS ingest_skips", "DROP TABLE IF EXISTS ingest_runs",
           "DELETE FROM fingerprint_terms", "UPDATE sources SET uri = NULL, options = NULL")


def write_snapshot(conn: sqlite3.Connection, out: Path) -> int:
    """Write the compressed snapshot to `out`; returns its size."""
    raw = out.with_name(out.name + ".sqlite.tmp")
    raw.unlink(missing_ok=True)
    conn.execute("VACUUM INTO ?", (str(raw),))
    snap = sqlite3.connect(raw, isolation_level=None)
    try:
        snap.execute("PRAGMA journal_mode = DELETE")
        for statement in PRIVATE:
            snap.execute(statement)
        snap.execute("VACUUM")
    finally:
        snap.close()
    compressor = zstandard.ZstdCompressor(level=LEVEL, threads=2, write_checksum=True)
    try:
        with open(raw, "rb") as src, open(out, "wb") as dst:
            # The frame declares its content size: a mirror decompresses no more than that.
            compressor.copy_stream(src, dst, size=os.fstat(src.fileno()).st_size)
    finally:
        raw.unlink(missing_ok=True)
    return out.stat().st_size
