"""What the home, album and artist pages show beyond the catalog rows: the albums that have
audio (recently added, most listened), their cover art, the latest release, and links for
every artist of a track."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from musicark.archive import Archive

HELD = "JOIN files f ON f.rowid = tf.file_rowid AND f.status = 'ok'"
ALBUMS_SQL = f"""
SELECT al.rowid, al.name, substr(al.release_date, 1, 4),
       (SELECT group_concat(name, ', ') FROM (SELECT a.name FROM album_artists aa
          JOIN artists a ON a.rowid = aa.artist_rowid
         WHERE aa.album_rowid = al.rowid ORDER BY aa.position)),
       max(f.added_at), total(t.listens), max(coalesce(t.popularity, -1)),
       count(DISTINCT t.rowid)
  FROM track_files tf {HELD}
  JOIN tracks t ON t.rowid = tf.track_rowid JOIN albums al ON al.rowid = t.album_rowid
 GROUP BY al.rowid
"""
ALBUM_ORDER = {"recent": "max(f.added_at) DESC, al.rowid DESC",
               "listened": "total(t.listens) DESC, max(coalesce(t.popularity, -1)) DESC, "
                           "al.rowid"}


def tracks_with_audio(archive: Archive) -> int:
    return archive.conn.execute(
        f"SELECT count(DISTINCT tf.track_rowid) FROM track_files tf {HELD}").fetchone()[0]


def albums_with_audio(archive: Archive, order: str, limit: int = 12,
                      artist: int | None = None) -> list[dict[str, Any]]:
    """Albums that hold at least one track with an ok file, `recent` or most `listened`
    first (observed listens, then popularity); of one artist when `artist` is given."""
    sql = ALBUMS_SQL
    args: list[Any] = []
    if artist is not None:
        sql = sql.replace("GROUP BY al.rowid", "WHERE al.rowid IN (SELECT album_rowid FROM "
                          "album_artists WHERE artist_rowid = ?) GROUP BY al.rowid")
        args.append(artist)
    rows = archive.conn.execute(f"{sql} ORDER BY {ALBUM_ORDER[order]} LIMIT ?",
                                [*args, limit]).fetchall()
    return [{"rowid": r[0], "name": r[1], "year": r[2], "artists": r[3], "added_at": r[4],
             "tracks_with_audio": r[7], "art": None} for r in rows]


def with_art(archive: Archive, albums: list[dict[str, Any]],
             art_of: Callable[[Archive, str], Any], per_album: int = 4) -> list[dict[str, Any]]:
    """Give each album the SHA-256 of a file of its that embeds cover art (or None)."""
    for album in albums:
        for (sha,) in archive.conn.execute(
                f"SELECT f.sha256 FROM tracks t JOIN track_files tf ON tf.track_rowid = "
                f"t.rowid {HELD} WHERE t.album_rowid = ? ORDER BY f.rowid LIMIT ?",
                (album["rowid"], per_album)):
            if art_of(archive, sha):
                album["art"] = sha
                break
    return albums


def latest_release(archive: Archive) -> dict[str, Any] | None:
    row = archive.conn.execute("""
        SELECT r.name, r.release_date, r.created_at, count(t.id), total(t.size),
               total(t.num_files)
          FROM releases r JOIN torrents t ON t.release_id = r.id
         GROUP BY r.id ORDER BY r.id DESC LIMIT 1""").fetchone()
    if row is None:
        return None
    return {"name": row[0], "date": row[1] or row[2][:10], "torrents": row[3],
            "bytes": int(row[4]), "files": int(row[5])}


def artist_links(archive: Archive, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `artist_list` [{rowid, name}] to each track row, in credit order, for links."""
    ids = [r["rowid"] for r in rows]
    credits: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for track, rowid, name in archive.conn.execute(
                "SELECT ta.track_rowid, a.rowid, a.name FROM track_artists ta JOIN artists a "
                f"ON a.rowid = ta.artist_rowid WHERE ta.track_rowid IN "
                f"({','.join('?' * len(ids))}) ORDER BY ta.track_rowid, ta.position", ids):
            credits[track].append({"rowid": rowid, "name": name})
    for row in rows:
        row["artist_list"] = credits.get(row["rowid"], [])
    return rows
