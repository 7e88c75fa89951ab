"""Forgetting a listens source: its counts, the listen identities it has seen and the record
of its files go, in one transaction, so its files can be imported again (e.g. with the right
`--map` or `--format`).

Why a whole source and not one file: a source's counts are summed per item and month, and a
listen seen in two of its files is counted once, so one file's share cannot be subtracted
exactly. Import files that may need forgetting alone into their own `--source`.
"""

from __future__ import annotations

from typing import Any

from musicark.archive import Archive
from musicark.errors import BadQuery


def forget_source(archive: Archive, name: str) -> dict[str, Any]:
    """Remove listens source `name` and everything imported into it; return what went.
    Listened items no other source counts are removed too (their catalog links with them)."""
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT id FROM listen_sources WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT name FROM listen_sources ORDER BY name")]
            raise BadQuery(f"no listens source {name!r}; sources: "
                           + (", ".join(known) or "none (nothing imported yet)"))
        sid = row[0]
        report = {
            "source": name,
            "files": conn.execute("SELECT count(*) FROM listen_files WHERE source_id = ?",
                                  (sid,)).fetchone()[0],
            "listens": conn.execute("SELECT coalesce(sum(listens), 0) FROM listen_counts "
                                    "WHERE source_id = ?", (sid,)).fetchone()[0],
        }
        conn.execute("DELETE FROM listen_counts WHERE source_id = ?", (sid,))
        conn.execute("DELETE FROM listen_seen WHERE source_id = ?", (sid,))
        conn.execute("DELETE FROM listen_files WHERE source_id = ?", (sid,))
        conn.execute("DELETE FROM listen_sources WHERE id = ?", (sid,))
        report["items"] = conn.execute(
            "DELETE FROM listen_keys WHERE NOT EXISTS "
            "(SELECT 1 FROM listen_counts c WHERE c.key_id = listen_keys.id)").rowcount
        archive.record_event("listens.forget", name, "ok", report)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return report
