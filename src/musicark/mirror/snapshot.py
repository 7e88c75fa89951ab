"""A release's catalog snapshot, checked and kept: its metadata torrent (when at hand),
zstd's frame checksum and SQLite's integrity check, then a decompressed copy under
`ARCHIVE/mirror/<release>.catalog.sqlite` that later imports (as more shards finish) read
file rows, links and derivations from without decompressing again."""

from __future__ import annotations

import os
from pathlib import Path

from musicark.ingest.store import sha256_file
from musicark.verify.catalog_restore import check_snapshot_torrent, unpack_snapshot
from musicark.verify.snapshot import MAX_SNAPSHOT


def snapshot_copy(archive_path: Path, release: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in release)
    return archive_path / "mirror" / f"{safe}.catalog.sqlite"


def open_snapshot(archive_path: Path, release: str, snap: Path, torrent: Path | None, *,
                  max_size: int = MAX_SNAPSHOT) -> tuple[Path, str]:
    """Check `snap` and decompress it (once per content, at most `max_size` bytes); (the
    copy, the snapshot's SHA-256). BadQuery when it is damaged or hostile."""
    check_snapshot_torrent(snap, torrent)
    digest = sha256_file(snap)[0]
    copy = snapshot_copy(archive_path, release)
    stamp = copy.with_name(copy.name + ".sha256")
    if copy.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return copy, digest
    copy.parent.mkdir(parents=True, exist_ok=True)
    tmp = copy.with_name(copy.name + ".tmp")
    unpack_snapshot(snap, None, tmp, max_size=max_size)  # its torrent was checked above
    os.replace(tmp, copy)
    stamp.write_text(digest + "\n")
    return copy, digest
