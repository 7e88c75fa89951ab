"""Damage found outside a scrub: a stage about to read a store file it expects to be good
(derive, tag, release) checks its size first; a mismatch is recorded as damage (ledger status
'damaged', a "fixity" event) and the file is never used as good."""

from __future__ import annotations

import json
import os
from pathlib import Path

from musicark.archive import Archive, utc_now
from musicark.verify.report import MISSING, SIZE


def size_damage(path: Path, expected: int | None) -> tuple[str, str] | None:
    """(kind, detail) when the file at `path` is missing or not `expected` bytes long."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return MISSING, "the store file is missing"
    if expected is not None and size != expected:
        return SIZE, f"{size:,} bytes on disk, the ledger says {expected:,}"
    return None


def mark_damaged(archive: Archive, sha256: str, kind: str, detail: str, *,
                 by: str) -> None:
    """Record damage to a store file in its own transaction: status 'damaged' (from 'ok';
    a quarantined or withdrawn file keeps its status), the outcome, and a fixity event."""
    conn = archive.conn
    now = utc_now()
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        record_outcome(conn, sha256, kind, detail, now, by=by)
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own:
            conn.execute("ROLLBACK")
        raise


def record_outcome(conn, sha256: str, kind: str | None, detail: str | None, now: str, *,
                   by: str, verified: bool = False) -> None:
    """One file's fixity outcome (None: good) into the ledger, with an event when it is
    damage or when a damaged file is good again; the caller holds the transaction."""
    row = conn.execute("SELECT status FROM files WHERE sha256 = ?", (sha256,)).fetchone()
    status = row[0] if row else None
    if kind is None:
        conn.execute("UPDATE files SET verified_at = coalesce(?, verified_at), fixity = 'ok', "
                     "status = CASE status WHEN 'damaged' THEN 'ok' ELSE status END, "
                     "reason = CASE status WHEN 'damaged' THEN NULL ELSE reason END "
                     "WHERE sha256 = ?", (now if verified else None, sha256))
        if status == "damaged":
            conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                         "VALUES (?, 'fixity', ?, 'ok', ?)",
                         (now, sha256, json.dumps({"by": by, "was": "damaged"})))
        return
    conn.execute("UPDATE files SET verified_at = coalesce(?, verified_at), fixity = ?, "
                 "status = CASE status WHEN 'ok' THEN 'damaged' ELSE status END, "
                 "reason = CASE status WHEN 'ok' THEN ? ELSE reason END WHERE sha256 = ?",
                 (now if verified else None, kind, f"fixity: {kind}: {detail}", sha256))
    conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                 "VALUES (?, 'fixity', ?, ?, ?)",
                 (now, sha256, kind, json.dumps({"by": by, "detail": detail}, sort_keys=True)))
