"""A release's catalog snapshot, checked and kept: its metadata torrent (when at hand),
zstd's frame checksum and SQLite's integrity check, then a decompressed copy under
`ARCHIVE/mirror/<release>.catalog.sqlite` that later imports (as more shards finish) read
file rows, links and derivations from without decompressing again."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import zstandard

from musicark.errors import BadQuery
from musicark.ingest.store import sha256_file
from musicark.verify.catalog import check_database
from musicark.verify.releases import check_tree
from musicark.verify.report import Report
from musicark.verify.torrent import BadTorrent, load_expectations


def snapshot_copy(archive_path: Path, release: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in release)
    return archive_path / "mirror" / f"{safe}.catalog.sqlite"


def open_snapshot(archive_path: Path, release: str, snap: Path, torrent: Path | None
                  ) -> tuple[Path, str]:
    """Check `snap` and decompress it (once per content); (the copy, the snapshot's
    SHA-256). BadQuery when it is damaged."""
    check = Report("catalog")
    if torrent is not None:
        try:
            check_tree(snap.parent, load_expectations(torrent.read_bytes()), check)
        except (BadTorrent, OSError) as exc:
            check.add("catalog", str(torrent), "invalid", f"libtorrent cannot load it: {exc}")
    if check.damaged:
        raise BadQuery(f"the catalog snapshot is damaged: {check.damaged[0].line()}")
    digest = sha256_file(snap)[0]
    copy = snapshot_copy(archive_path, release)
    stamp = copy.with_name(copy.name + ".sha256")
    if copy.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return copy, digest
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = copy.with_name(copy.name + ".tmp")
    try:
        with open(snap, "rb") as src, open(tmp, "wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
    except zstandard.ZstdError as exc:
        tmp.unlink(missing_ok=True)
        raise BadQuery(f"the catalog snapshot {snap} does not decompress: {exc}") from None
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        check_database(conn, str(snap), check, ledger=False)
    except sqlite3.DatabaseError as exc:
        check.add("catalog", str(snap), "invalid", str(exc))
    finally:
        conn.close()
    if check.damaged:
        tmp.unlink(missing_ok=True)
        raise BadQuery(f"the catalog snapshot is damaged: {check.damaged[0].line()}")
    os.replace(tmp, copy)
    stamp.write_text(digest + "\n")
    return copy, digest
