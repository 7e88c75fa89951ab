"""Listen statistics: by source and month, the most listened tracks and artists, how much is
matched, and what is listened to but not in the catalog. Aggregated in SQLite."""

from __future__ import annotations

from typing import Any

from musicark.archive import Archive
from musicark.errors import BadQuery
from musicark.listens.match import matched_share

PER_TRACK_SQL = """
    SELECT k.track_rowid AS track, sum(c.listens) AS n FROM listen_counts c
      JOIN listen_keys k ON k.id = c.key_id
     WHERE k.track_rowid IS NOT NULL GROUP BY k.track_rowid"""


def listen_stats(archive: Archive, *, top: int = 20) -> dict[str, Any]:
    from musicark.listens.model import has_listens

    if not has_listens(archive):
        raise BadQuery("this archive predates listens: any write verb (e.g. `musicark "
                       "listens rematch`) upgrades its schema")
    conn = archive.conn
    sources = [
        {"source": name, "format": fmt, "files": files, "listens": listens or 0,
         "first_month": first, "last_month": last}
        for name, fmt, files, listens, first, last in conn.execute("""
            SELECT s.name, s.format,
                   (SELECT count(*) FROM listen_files f WHERE f.source_id = s.id),
                   (SELECT sum(listens) FROM listen_counts c WHERE c.source_id = s.id),
                   (SELECT min(month) FROM listen_counts c WHERE c.source_id = s.id),
                   (SELECT max(month) FROM listen_counts c WHERE c.source_id = s.id)
              FROM listen_sources s ORDER BY s.name""")]
    months = [{"month": f"{m // 100:04d}-{m % 100:02d}", "source": s, "listens": n}
              for m, s, n in conn.execute("""
                SELECT c.month, s.name, sum(c.listens) FROM listen_counts c
                  JOIN listen_sources s ON s.id = c.source_id GROUP BY 1, 2 ORDER BY 1, 2""")]
    tracks = [{"track": rowid, "id": ext, "name": name, "artists": artists, "listens": n}
              for rowid, ext, name, artists, n in conn.execute(f"""
                SELECT t.rowid, t.ext_id, t.name,
                       (SELECT group_concat(a.name, ', ') FROM track_artists ta
                          JOIN artists a ON a.rowid = ta.artist_rowid
                         WHERE ta.track_rowid = t.rowid), p.n
                  FROM ({PER_TRACK_SQL}) p JOIN tracks t ON t.rowid = p.track
                 ORDER BY p.n DESC, t.rowid LIMIT ?""", (top,))]
    artists = [{"artist": rowid, "id": ext, "name": name, "listens": n, "tracks": k}
               for rowid, ext, name, n, k in conn.execute(f"""
                 SELECT a.rowid, a.ext_id, a.name, sum(p.n), count(*)
                   FROM ({PER_TRACK_SQL}) p
                   JOIN track_artists ta ON ta.track_rowid = p.track AND ta.position = 0
                   JOIN artists a ON a.rowid = ta.artist_rowid
                  GROUP BY a.rowid ORDER BY 4 DESC, a.rowid LIMIT ?""", (top,))]
    tracks_matched = conn.execute(
        "SELECT count(DISTINCT track_rowid) FROM listen_keys "
        "WHERE track_rowid IS NOT NULL").fetchone()[0]
    return {"sources": sources, "months": months, "top_tracks": tracks, "top_artists": artists,
            "matched": {**matched_share(archive), "tracks_with_listens": tracks_matched},
            "unmatched_top": unmatched(archive, limit=top)}


def unmatched(archive: Archive, *, limit: int = 100) -> list[dict[str, Any]]:
    """Listened items not in the catalog, counted per artist and title (any case)."""
    return [{"artist": artist, "title": title, "listens": n, "variants": v}
            for artist, title, n, v in archive.conn.execute("""
              SELECT min(k.artist), min(k.title), sum(c.n), count(*) FROM listen_keys k
                JOIN (SELECT key_id, sum(listens) AS n FROM listen_counts GROUP BY key_id) c
                  ON c.key_id = k.id
               WHERE k.track_rowid IS NULL
               GROUP BY lower(k.artist), lower(k.title) ORDER BY 3 DESC, 1, 2 LIMIT ?""",
                                                (limit,))]


def track_listens(archive: Archive, track_rowid: int) -> dict[str, Any] | None:
    """Observed listens of one track: total, per source, and the months they span."""
    rows = archive.conn.execute("""
        SELECT s.name, sum(c.listens), min(c.month), max(c.month) FROM listen_keys k
          JOIN listen_counts c ON c.key_id = k.id JOIN listen_sources s ON s.id = c.source_id
         WHERE k.track_rowid = ? GROUP BY s.name ORDER BY 2 DESC""", (track_rowid,)).fetchall()
    if not rows:
        return None
    return {"total": sum(r[1] for r in rows),
            "sources": [{"source": s, "listens": n, "first_month": lo, "last_month": hi}
                        for s, n, lo, hi in rows]}


def artist_listens(archive: Archive, artist_rowid: int) -> int:
    """Observed listens of every track the artist is credited on."""
    return archive.conn.execute("""
        SELECT coalesce(sum(c.listens), 0) FROM track_artists ta
          JOIN listen_keys k ON k.track_rowid = ta.track_rowid
          JOIN listen_counts c ON c.key_id = k.id
         WHERE ta.artist_rowid = ?""", (artist_rowid,)).fetchone()[0]
