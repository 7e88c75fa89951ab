"""Reading the ledger: files with their status, facts and first known path."""

from __future__ import annotations

import json
from typing import Any

from musicark.archive import Archive
from musicark.errors import BadQuery, NotInCatalog
from musicark.ingest.paths import as_json
from musicark.ingest.walk import FAILED

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
        row.update(as_json(row["path"]))
    return rows


def _has_runs(archive: Archive) -> bool:
    """False on an archive opened read-only before migration 15 (no runs recorded yet)."""
    return archive.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'ingest_runs'"
                                ).fetchone() is not None


def list_skipped(archive: Archive, *, run: int | None = None, limit: int = 50
                 ) -> list[dict[str, Any]]:
    """Paths ingest did not store: first those ingest run `run` (default: the latest) could
    not walk or read, or left out by rule (the archive's own folder, symlinked folders),
    then every path skipped as not audio (remembered across runs), each with its reason."""
    if not 1 <= limit <= 10_000:
        raise BadQuery("limit must be between 1 and 10000")
    conn = archive.conn
    runs = _has_runs(archive)
    if run is None and runs:
        run = conn.execute("SELECT max(id) FROM ingest_runs").fetchone()[0]
    elif run is not None and (not runs or conn.execute(
            "SELECT 1 FROM ingest_runs WHERE id = ?", (run,)).fetchone() is None):
        raise NotInCatalog(f"no ingest run {run} (see `musicark ledger --runs`)")
    names = ("path", "kind", "reason", "size", "seen_at", "run")
    rows = [dict(zip(names, r, strict=True)) for r in conn.execute(
        "SELECT s.path, s.kind, s.reason, NULL, r.started_at, r.id FROM ingest_skips s "
        "JOIN ingest_runs r ON r.id = s.run_id WHERE r.id = ? ORDER BY s.path LIMIT ?",
        (run, limit))] if run is not None else []
    rows += [dict(zip(names, r, strict=True)) for r in conn.execute(
        "SELECT path, 'not audio', reason, size, seen_at, NULL FROM file_paths "
        "WHERE file_rowid IS NULL ORDER BY path LIMIT ?", (limit - len(rows),))]
    for row in rows:
        row["reason"] = row["reason"] or "not audio (recorded before reasons were kept)"
        row.update(as_json(row["path"]))
    return rows


def list_runs(archive: Archive, *, limit: int = 50) -> list[dict[str, Any]]:
    """Ingest runs, latest first, with how many paths each did not walk or read."""
    if not 1 <= limit <= 10_000:
        raise BadQuery("limit must be between 1 and 10000")
    if not _has_runs(archive):
        return []
    cur = archive.conn.execute(
        "SELECT id, started_at, finished_at, outcome, paths, (SELECT count(*) FROM "
        "ingest_skips s WHERE s.run_id = r.id AND s.kind IN (SELECT value FROM json_each(?))) "
        "FROM ingest_runs r ORDER BY id DESC LIMIT ?", (json.dumps(FAILED), limit))
    return [{"run": i, "started_at": start, "finished_at": end, "outcome": outcome,
             "paths": json.loads(paths), "not_walked_or_read": n}
            for i, start, end, outcome, paths, n in cur]
