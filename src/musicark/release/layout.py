"""Where each payload file of a release goes, staged on disk so releases of millions of
files stream in constant memory.

Items are written to a temporary table with their bucket and path as they are selected;
collisions are resolved there (the few paths that share a case-folded form); shards are
then cut while reading the table back in (bucket, path) order, one shard in memory at a
time. Path components are joined with U+0001 in the table: it sorts below every character
a component may hold, so SQLite's order is Python's order of component tuples.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator, Sequence

from musicark.archive import Archive
from musicark.release.items import (
    ReleaseItem,
    Selection,
    item_from_json,
    item_to_json,
    select_items,
)
from musicark.release.paths import numbered, track_path
from musicark.release.shards import Bucket, bucket_of, bucket_rank

SEP = "\x01"

STAGE_SQL = """
CREATE TEMP TABLE release_layout (
    rank INTEGER NOT NULL,
    bucket TEXT NOT NULL,
    low INTEGER,
    high INTEGER,
    path TEXT NOT NULL,
    fold TEXT NOT NULL,
    sha TEXT NOT NULL,
    item TEXT NOT NULL
)"""


def fold(parts: Sequence[str]) -> str:
    """The form two paths must not share: NFC, case-folded (Windows and macOS ignore case)."""
    return SEP.join(unicodedata.normalize("NFC", p).casefold() for p in parts)


def stage(archive: Archive, plan_id: int | None, bounds: Sequence[int]) -> Selection:
    """Select the release's items and write each with its bucket and final path."""
    conn = archive.conn
    conn.execute("DROP TABLE IF EXISTS temp.release_layout")
    conn.execute(STAGE_SQL)
    selection = Selection()
    batch = []
    for item in select_items(archive, plan_id, selection):
        bucket = bucket_of(item.popularity, bounds)
        parts = track_path(bucket.name, ext=item.ext, **item.path_fields)
        batch.append((bucket_rank(bucket), bucket.name, bucket.low, bucket.high,
                      SEP.join(parts), fold(parts), item.sha256, item_to_json(item)))
        if len(batch) >= 10_000:
            conn.executemany("INSERT INTO release_layout VALUES (?,?,?,?,?,?,?,?)", batch)
            batch = []
    conn.executemany("INSERT INTO release_layout VALUES (?,?,?,?,?,?,?,?)", batch)
    conn.execute("CREATE INDEX temp.release_layout_fold ON release_layout(fold)")
    _resolve_collisions(archive)
    conn.execute("CREATE INDEX temp.release_layout_order ON release_layout(rank, path, sha)")
    return selection


def _resolve_collisions(archive: Archive) -> None:
    """Paths that share a folded form: the first in (path, content hash) order keeps its
    name, the others get the lowest free " (2)", " (3)", ... (free of every staged path)."""
    conn = archive.conn
    shared = [f for (f,) in conn.execute(
        "SELECT fold FROM release_layout GROUP BY fold HAVING count(*) > 1 ORDER BY fold")]
    for folded in shared:
        rows = conn.execute("SELECT rowid, path FROM release_layout WHERE fold = ? "
                            "ORDER BY path, sha", (folded,)).fetchall()
        for rowid, path in rows[1:]:
            parts = tuple(path.split(SEP))
            n = 2
            while True:
                candidate = numbered(parts, n)
                taken = conn.execute("SELECT 1 FROM release_layout WHERE fold = ?",
                                     (fold(candidate),)).fetchone()
                if not taken:
                    break
                n += 1
            conn.execute("UPDATE release_layout SET path = ?, fold = ? WHERE rowid = ?",
                         (SEP.join(candidate), fold(candidate), rowid))


def placed(archive: Archive) -> Iterator[tuple[tuple[str, ...], ReleaseItem, Bucket]]:
    """The staged items in shard order: most popular bucket first, then path."""
    cursor = archive.conn.execute(
        "SELECT bucket, low, high, path, item FROM release_layout ORDER BY rank, path, sha")
    while rows := cursor.fetchmany(1000):
        for name, low, high, path, item in rows:
            yield tuple(path.split(SEP)), item_from_json(item), Bucket(name, low, high)


def digest(archive: Archive, extra: str) -> str:
    """A fingerprint of the whole layout (and `extra`, the options): a killed build's
    leftovers are reused only for the very same layout."""
    h = hashlib.sha256(extra.encode())
    for (row,) in archive.conn.execute(
            "SELECT path || '|' || item FROM release_layout ORDER BY rank, path, sha"):
        h.update(row.encode())
        h.update(b"\n")
    return h.hexdigest()


def drop(archive: Archive) -> None:
    archive.conn.execute("DROP TABLE IF EXISTS temp.release_layout")
