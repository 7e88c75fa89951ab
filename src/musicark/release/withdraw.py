"""`withdraw`: take a track or a file out of every future release, with a tombstone.

A withdrawn file is marked `withdrawn` in the ledger (with the reason) and so are the files
made from it (Opus encodes, tagged copies, restore patches). A withdrawn track keeps its
files (they may hold other recordings) but is never released again. Bytes stay in the store,
and shards already published keep their infohashes: the report names the torrents that
still carry the item, so their operators can decide what to do.
"""

from __future__ import annotations

import re
from typing import Any

from musicark.archive import Archive, utc_now
from musicark.catalog.search import resolve
from musicark.errors import BadQuery, NotInCatalog
from musicark.release.items import dumps

SHA256 = re.compile(r"[0-9a-f]{64}")


def _file_rowid(archive: Archive, ref: str) -> int | None:
    ref = ref.lower()
    if ref.startswith("file:") and ref[5:].isascii() and ref[5:].isdigit() \
            and len(ref) < 24:
        row = archive.conn.execute("SELECT rowid FROM files WHERE rowid = ?",
                                   (int(ref[5:]),)).fetchone()
    elif SHA256.fullmatch(ref.removeprefix("sha256:")):
        row = archive.conn.execute("SELECT rowid FROM files WHERE sha256 = ?",
                                   (ref.removeprefix("sha256:"),)).fetchone()
    else:
        return None
    if row is None:
        raise NotInCatalog(f"no file {ref} in the ledger; nothing was withdrawn")
    return row[0]


def _derived_closure(conn, rowid: int) -> list[int]:
    """The file and everything made from it, transitively (encodes, tagged copies, patches)."""
    rows = conn.execute("""
        WITH RECURSIVE made(file) AS (
            SELECT ?
            UNION SELECT d.output_file FROM derivations d JOIN made m ON d.input_file = m.file
            UNION SELECT d.patch_file FROM derivations d JOIN made m ON d.input_file = m.file
                   WHERE d.patch_file IS NOT NULL)
        SELECT file FROM made ORDER BY file""", (rowid,)).fetchall()
    return [r[0] for r in rows]


def withdraw(archive: Archive, ref: str, reason: str) -> dict[str, Any]:
    """Withdraw `ref` (a SHA-256, `file:N`, `track:N` or any track identifier)."""
    if not reason or not reason.strip():
        raise BadQuery("a withdrawal needs a reason (--reason)")
    conn = archive.conn
    file_rowid = _file_rowid(archive, ref)
    now = utc_now()
    conn.execute("BEGIN IMMEDIATE")
    try:
        if file_rowid is not None:
            kind, subjects = "file", _derived_closure(conn, file_rowid)
            for rowid in subjects:
                conn.execute("UPDATE files SET status = 'withdrawn', reason = ? "
                             "WHERE rowid = ?", (f"withdrawn: {reason}", rowid))
            carried = conn.execute(f"""
                SELECT DISTINCT t.name FROM release_files rf
                  JOIN torrents t ON t.id = rf.torrent_id
                 WHERE rf.file_rowid IN ({",".join("?" * len(subjects))})
                 ORDER BY t.name""", subjects).fetchall()
        else:
            entity, rowid = resolve(archive, ref)
            if entity != "track":
                raise BadQuery(f"{ref!r} is an {entity}; withdraw its tracks or files")
            if conn.execute("SELECT 1 FROM tracks WHERE rowid = ?", (rowid,)).fetchone() is None:
                raise NotInCatalog(f"no track {ref} in the catalog; nothing was withdrawn")
            kind, subjects = "track", [rowid]
            carried = conn.execute("""
                SELECT DISTINCT t.name FROM release_tracks rt
                  JOIN torrents t ON t.id = rt.torrent_id
                 WHERE rt.track_rowid = ? ORDER BY t.name""", (rowid,)).fetchall()
        new = 0
        for rowid in subjects:
            new += conn.execute(
                "INSERT OR IGNORE INTO tombstones(kind, ref, reason, at) VALUES (?, ?, ?, ?)",
                (kind, rowid, reason, now)).rowcount
        report = {"kind": kind, "withdrawn": [f"{kind}:{r}" for r in subjects],
                  "new_tombstones": new, "reason": reason,
                  "still_in_published_torrents": [r[0] for r in carried]}
        conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                     "VALUES (?, 'withdraw', ?, 'ok', ?)", (now, ref, dumps(report)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return report


def tombstones(archive: Archive) -> list[dict[str, Any]]:
    return [{"kind": k, "ref": f"{k}:{r}", "reason": why, "at": at} for k, r, why, at in
            archive.conn.execute("SELECT kind, ref, reason, at FROM tombstones ORDER BY id")]
