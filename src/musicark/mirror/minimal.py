"""A minimal catalog from a shard's files.jsonl, for a mirror without the metadata torrent:
per track its source, id, ISRC, MBID, title and popularity. Its sources are marked
`kind = 'minimal'`; a later import of the snapshot fills those tracks in (by source and id)."""

from __future__ import annotations

import json
import sqlite3

from musicark.archive import utc_now
from musicark.mirror.merge import index_tracks


def source_id(conn: sqlite3.Connection, name: str, release: str) -> int:
    row = conn.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()
    if row:
        return row[0]
    return conn.execute(
        "INSERT INTO sources(name, kind, status, imported_at, report) "
        "VALUES (?, 'minimal', 'complete', ?, ?)",
        (name, utc_now(), json.dumps({"minimal": True, "from": f"release {release} "
                                      "files.jsonl"}))).lastrowid


def add_tracks(conn: sqlite3.Connection, release: str, entries: list[dict]) -> int:
    """Tracks the entries name that the catalog lacks (inside the caller's transaction);
    a track keeps the publisher's rowid (`track:N`) when it is free. Returns how many."""
    added: list[int] = []
    for entry in entries:
        for t in entry.get("tracks") or []:
            source = source_id(conn, t.get("source") or f"release {release}", release)
            if t.get("ext_id") is not None and conn.execute(
                    "SELECT 1 FROM tracks WHERE source_id = ? AND ext_id = ?",
                    (source, t["ext_id"])).fetchone():
                continue
            wanted = _rowid(t.get("track"))
            if wanted is not None and conn.execute("SELECT 1 FROM tracks WHERE rowid = ?",
                                                   (wanted,)).fetchone():
                wanted = None
            added.append(conn.execute(
                "INSERT INTO tracks(rowid, source_id, ext_id, mbid, name, isrc, popularity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (wanted, source, t.get("ext_id"), t.get("mbid"), t.get("title"), t.get("isrc"),
                 t.get("popularity"))).lastrowid)
    if added:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS m_added (rowid INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM m_added")
        conn.executemany("INSERT INTO m_added VALUES (?)", [(r,) for r in added])
        index_tracks(conn, "SELECT rowid FROM m_added")
    return len(added)


def _rowid(ref: str | None) -> int | None:
    if isinstance(ref, str) and ref.startswith("track:") and ref[6:].isdigit():
        return int(ref[6:])
    return None
