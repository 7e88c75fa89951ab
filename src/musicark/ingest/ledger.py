"""Reading the ledger: files with their status, facts and first known path."""

from __future__ import annotations

import json
from typing import Any

from musicark.archive import Archive
from musicark.errors import BadQuery

STATUSES = ("ok", "quarantined", "withdrawn", "damaged", "absent")


def list_files(archive: Archive, *, status: str | None = None, limit: int = 50
               ) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 10_000:
        raise BadQuery("limit must be between 1 and 10000")
    cur = archive.conn.execute(
        "SELECT f.rowid, f.sha256, f.size, f.container, f.codec, f.bitrate, f.sample_rate, "
        "f.channels, f.duration_ms, f.status, f.reason, f.licence, f.provenance, f.added_at, "
        "f.common, (SELECT min(path) FROM file_paths p WHERE p.file_rowid = f.rowid) AS path, "
        "(SELECT count(*) FROM file_paths p WHERE p.file_rowid = f.rowid) AS paths "
        "FROM files f WHERE (:s IS NULL OR f.status = :s) ORDER BY f.rowid LIMIT :n",
        {"s": status, "n": limit})
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        row["common"] = json.loads(row["common"]) if row["common"] else None
    return rows


def list_skipped(archive: Archive, *, limit: int = 50) -> list[dict[str, Any]]:
    """Paths ingest saw and did not store (no sign of audio), with the reason."""
    if not 1 <= limit <= 10_000:
        raise BadQuery("limit must be between 1 and 10000")
    cur = archive.conn.execute(
        "SELECT path, size, reason, seen_at FROM file_paths WHERE file_rowid IS NULL "
        "ORDER BY path LIMIT ?", (limit,))
    rows = [dict(zip(("path", "size", "reason", "seen_at"), r, strict=True)) for r in cur]
    for row in rows:
        row["reason"] = row["reason"] or "not audio (recorded before reasons were kept)"
    return rows
