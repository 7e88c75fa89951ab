"""What the Subsonic API calls the library: songs are catalog tracks with a playable (ok)
file, albums and artists those with at least one song.

Clients list albums by name, artist, year, genre and date added, and page through every
song to sync. Those orders are computed once into a snapshot held in memory (about a
second per million songs) and rebuilt when the catalog changes, so each list request is a
slice plus one indexed query for the rows shown.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from musicark import db

CHECK_EVERY = 5.0  # seconds between checks that the catalog changed

SONGS_SQL = """
SELECT t.rowid, t.album_rowid, coalesce(t.duration_ms, 0), coalesce(t.listens, 0),
       coalesce(t.popularity, 0), s.added,
       (SELECT g.genre FROM track_artists ta JOIN artist_genres g
            ON g.artist_rowid = ta.artist_rowid
         WHERE ta.track_rowid = t.rowid ORDER BY ta.position, g.position LIMIT 1)
  FROM (SELECT tf.track_rowid AS id, min(f.added_at) AS added
          FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid AND f.status = 'ok'
         GROUP BY tf.track_rowid) s
  JOIN tracks t ON t.rowid = s.id
 ORDER BY t.rowid
"""
ALBUMS_SQL = """
SELECT al.rowid, coalesce(al.name, ''), al.release_date,
       coalesce((SELECT artist_rowid FROM album_artists WHERE album_rowid = al.rowid
                  ORDER BY position LIMIT 1),
                (SELECT ta.artist_rowid FROM tracks t JOIN track_artists ta
                    ON ta.track_rowid = t.rowid
                  WHERE t.album_rowid = al.rowid ORDER BY t.rowid, ta.position LIMIT 1))
  FROM albums al WHERE al.rowid = ?
"""


@dataclass
class Album:
    rowid: int
    name: str
    year: int | None
    artist: int | None
    songs: int = 0
    duration_ms: int = 0
    listens: int = 0
    added: str = ""
    genre: str | None = None


@dataclass
class Snapshot:
    songs: list[int] = field(default_factory=list)            # track rowids, ascending
    albums: dict[int, Album] = field(default_factory=dict)
    artists: dict[int, tuple[str, str]] = field(default_factory=dict)  # rowid: (name, sort)
    artist_albums: dict[int, list[int]] = field(default_factory=dict)
    genres: dict[str, list[int]] = field(default_factory=dict)  # genre: song rowids
    orders: dict[str, list[int]] = field(default_factory=dict)  # album list orders
    newest: str = ""  # when the newest song's file was added (getIndexes' lastModified)
    album_ids: list[int] = field(default_factory=list)   # ascending: the empty search
    artist_ids: list[int] = field(default_factory=list)  # album artists, ascending
    years: list[int] = field(default_factory=list)       # beside orders["byYear"]
    genre_albums: dict[str, list[int]] = field(default_factory=dict)  # by name

    def is_song(self, rowid: int) -> bool:
        from bisect import bisect_left

        i = bisect_left(self.songs, rowid)
        return i < len(self.songs) and self.songs[i] == rowid


def _year(date: str | None) -> int | None:
    return int(date[:4]) if date and date[:4].isdigit() else None


def build(conn: sqlite3.Connection) -> Snapshot:
    snap = Snapshot()
    albums = snap.albums
    for rowid, album, duration, listens, popularity, added, genre in conn.execute(SONGS_SQL):
        snap.songs.append(rowid)
        snap.newest = max(snap.newest, added or "")
        if genre:
            snap.genres.setdefault(genre, []).append(rowid)
        if album is None:
            continue
        item = albums.get(album)
        if item is None:
            name, date, artist = conn.execute(ALBUMS_SQL, (album,)).fetchone()[1:]
            item = albums[album] = Album(album, name, _year(date), artist, genre=genre)
        item.songs += 1
        item.duration_ms += duration
        item.listens += listens or popularity  # known counts, else the popularity score
        item.added = max(item.added, added or "")
    ids = [a.artist for a in albums.values() if a.artist is not None]
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        for rowid, name, sort in conn.execute(
                f"SELECT rowid, coalesce(name, ''), coalesce(sort_name, name, '') FROM artists "
                f"WHERE rowid IN ({','.join('?' * len(chunk))})", chunk):
            snap.artists[rowid] = (name, sort)
    for item in albums.values():
        if item.artist is not None:
            snap.artist_albums.setdefault(item.artist, []).append(item.rowid)

    def artist_name(a: Album) -> str:
        return snap.artists.get(a.artist, ("", ""))[1].casefold() if a.artist else ""

    values = list(albums.values())
    snap.orders = {
        "alphabeticalByName": [a.rowid for a in sorted(values, key=lambda a: (
            a.name.casefold(), a.rowid))],
        "alphabeticalByArtist": [a.rowid for a in sorted(values, key=lambda a: (
            artist_name(a), a.year or 0, a.name.casefold(), a.rowid))],
        "byYear": [a.rowid for a in sorted(values, key=lambda a: (a.year or 0, a.rowid))],
        "newest": [a.rowid for a in sorted(values, key=lambda a: (a.added, a.rowid),
                                           reverse=True)],
        "frequent": [a.rowid for a in sorted(values, key=lambda a: (-a.listens, a.rowid))],
        "highest": [a.rowid for a in sorted(values, key=lambda a: (-a.listens, a.rowid))],
    }
    snap.album_ids = sorted(albums)
    snap.artist_ids = sorted(snap.artist_albums)
    snap.years = [albums[a].year or 0 for a in snap.orders["byYear"]]
    for rowid in snap.orders["alphabeticalByName"]:
        genre = albums[rowid].genre
        if genre:
            snap.genre_albums.setdefault(genre, []).append(rowid)
    return snap


class Library:
    """The current snapshot of one archive, rebuilt when another connection commits."""

    def __init__(self, catalog: Path) -> None:
        self._catalog = catalog
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._snapshot: Snapshot | None = None
        self._version: int | None = None
        self._checked = 0.0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = db.connect(self._catalog, readonly=True)
        return self._conn

    def get(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if self._snapshot is not None and now - self._checked < CHECK_EVERY:
                return self._snapshot
            conn = self._connect()
            # data_version changes when any other connection commits to the catalog.
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if self._snapshot is None or version != self._version:
                conn.execute("BEGIN")
                try:
                    self._snapshot = build(conn)
                finally:
                    conn.execute("COMMIT")
                self._version = version
            self._checked = now
            return self._snapshot
