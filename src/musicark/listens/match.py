"""Listened items → catalog tracks, through the matcher ingest uses (`ingest.match.match_tags`).

Order: recording MBID, ISRC, the source's own track id, then artist + title (+ album,
+ duration) fuzzily. An identifier naming several tracks (one recording on many releases)
gives its listens to the most popular of them, so a listen is counted once. Items that match
nothing stay in `listen_keys` with their counts; `listens rematch` retries them after a
catalog import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from musicark.archive import Archive, utc_now
from musicark.errors import BadQuery
from musicark.ingest.match import Resolver, leave_unmatched, match_tags
from musicark.runner import fan_out

ORDER = ("mbid", "isrc", "ext_id")
COMMIT_EVERY = 2_000
CHUNK = 250  # items per unit of work


def _tags(artist: str | None, title: str | None, album: str | None, mbid: str | None,
          isrc: str | None, ext_id: str | None) -> dict[str, Any]:
    return {"title": title, "artists": [artist] if artist else [], "album": album,
            "musicbrainz_recording_id": mbid, "isrc": isrc, "ext_id": ext_id}


def _most_popular(archive: Archive, links: list[tuple[int, float]]) -> tuple[int, float]:
    if len(links) == 1:
        return links[0]
    scores = dict(links)
    rowids = list(scores)
    best = archive.conn.execute(
        f"SELECT rowid FROM tracks WHERE rowid IN ({','.join('?' * len(rowids))}) "
        "ORDER BY coalesce(popularity, -1) DESC, rowid LIMIT 1", rowids).fetchone()[0]
    return best, scores[best]


def match_items(archive: Archive, items: list[tuple], resolver: Resolver = leave_unmatched
                ) -> list[tuple]:
    """(key id, track or None, method, score, ambiguous) for each listened item row."""
    out = []
    for key_id, artist, title, album, duration_ms, mbid, isrc, ext_id in items:
        outcome = match_tags(archive, _tags(artist, title, album, mbid, isrc, ext_id),
                             duration_ms, resolver=resolver, order=ORDER)
        if outcome.links:
            track, score = _most_popular(archive, outcome.links)
            out.append((key_id, track, outcome.method, score, False))
        else:
            out.append((key_id, None, None, None, outcome.ambiguous))
    return out


_WORKER_ARCHIVES: dict[str, Archive] = {}


def _match_in_worker(path: str, items: list[tuple]) -> list[tuple]:
    """A worker process matches a chunk on its own read-only connection (kept per process)."""
    archive = _WORKER_ARCHIVES.get(path)
    if archive is None:
        archive = _WORKER_ARCHIVES[path] = Archive.open(path, readonly=True)
    return match_items(archive, items)


def match_listens(archive: Archive, *, retry: bool = False, relink: bool = False,
                  resolver: Resolver = leave_unmatched, workers: int = 1,
                  dask: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Match listened items no matching has seen; `retry` also those that matched nothing
    before; `relink` recomputes every link (after the catalog changed under them).

    With `workers` > 1 (or a Dask scheduler address) chunks of items are matched in other
    processes on read-only connections and this one writes (a custom resolver needs
    workers=1). Commits every COMMIT_EVERY items, so a killed run keeps what it matched;
    `progress(done, total)` follows it."""
    conn = archive.conn
    if relink:
        where = "1"
    elif retry:
        where = "track_rowid IS NULL"
    else:
        where = "matched_at IS NULL"
    items = conn.execute(
        "SELECT id, artist, title, album, duration_ms, mbid, isrc, ext_id FROM listen_keys "
        f"WHERE {where} ORDER BY id").fetchall()
    if resolver is not leave_unmatched and (workers > 1 or dask):
        raise BadQuery("a custom resolver runs in this process only: use workers=1")
    methods: Counter = Counter()
    ambiguous = unmatched = done = 0
    now = utc_now()
    chunks = [items[at:at + CHUNK] for at in range(0, len(items), CHUNK)]
    if (workers > 1 or dask) and len(chunks) > 1:
        results = fan_out(_match_in_worker, ((str(archive.path), c) for c in chunks),
                          workers=workers, dask=dask)
    else:
        results = (match_items(archive, c, resolver) for c in chunks)
    updates: list[tuple] = []
    for result in results:
        for key_id, track, method, score, is_ambiguous in result:
            updates.append((track, method, score, now, key_id))
            if track is not None:
                methods[method] += 1
            else:
                ambiguous += is_ambiguous
                unmatched += not is_ambiguous
        if len(updates) >= COMMIT_EVERY or done + len(updates) == len(items):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("UPDATE listen_keys SET track_rowid = ?, method = ?, "
                             "score = ?, matched_at = ? WHERE id = ?", updates)
            conn.execute("COMMIT")
            done += len(updates)
            updates.clear()
            if progress is not None:
                progress(done, len(items))
    report = {"items": len(items), "matched": dict(methods),
              "matched_items": sum(methods.values()), "ambiguous": ambiguous,
              "unmatched": unmatched, **matched_share(archive)}
    archive.record_event("listens.match", None, "ok", report)
    return report


def matched_share(archive: Archive) -> dict[str, int]:
    """Listens and listened items, all and matched to a track."""
    row = archive.conn.execute("""
        SELECT count(*), coalesce(sum(k.track_rowid IS NOT NULL), 0),
               coalesce(sum(c.n), 0), coalesce(sum(CASE WHEN k.track_rowid IS NOT NULL
                                                    THEN c.n END), 0)
          FROM listen_keys k
          JOIN (SELECT key_id, sum(listens) AS n FROM listen_counts GROUP BY key_id) c
            ON c.key_id = k.id""").fetchone()
    return {"listened_items": row[0], "listened_items_matched": row[1],
            "listens_total": row[2], "listens_matched": row[3]}
