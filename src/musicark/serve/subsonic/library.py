"""What the Subsonic API calls the library: songs are catalog tracks with a playable (ok)
file, albums and artists those with at least one song.

Clients list albums by name, artist, year, genre and date added, and page through every
song to sync. Those orders are computed once into a snapshot held in memory (about a
second per million songs) and rebuilt when the catalog changes, so each list request is a
slice plus one indexed query for the rows shown.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from musicark import db

CHECK_EVERY = 5.0  # seconds between checks that the catalog changed
REBUILD_EVERY = 60.0  # seconds between rebuilds while the catalog keeps changing

# One row per (song, ok file), in track order: a song's facts, and when its file arrived.
SONGS_SQL = """
SELECT tf.track_rowid, t.album_rowid, coalesce(t.duration_ms, 0), coalesce(t.listens, 0),
       coalesce(t.popularity, 0), f.added_at
  FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid AND f.status = 'ok'
  JOIN tracks t ON t.rowid = tf.track_rowid
 ORDER BY tf.track_rowid
"""
# Observed listens (imported listening data) per album, where the archive has them.
OBSERVED_SQL = """
SELECT t.album_rowid, sum(c.listens) FROM listen_counts c
  JOIN listen_keys k ON k.id = c.key_id JOIN tracks t ON t.rowid = k.track_rowid
 WHERE k.track_rowid IS NOT NULL AND t.album_rowid IS NOT NULL GROUP BY t.album_rowid
"""
# A song's genre: its first artist's first genre.
SONG_GENRES_SQL = """
SELECT ta.track_rowid, g.genre FROM track_artists ta JOIN artist_genres g
    ON g.artist_rowid = ta.artist_rowid AND g.position = 0
 WHERE ta.position = 0 ORDER BY ta.track_rowid
"""
# Name orders sorted by SQLite (in C); albums without a song are dropped while reading.
BY_NAME_SQL = "SELECT rowid FROM albums ORDER BY name COLLATE NOCASE, rowid"
BY_ARTIST_SQL = """
SELECT al.rowid FROM albums al
  LEFT JOIN album_artists aa ON aa.album_rowid = al.rowid AND aa.position = 0
  LEFT JOIN artists ar ON ar.rowid = aa.artist_rowid
 ORDER BY coalesce(ar.sort_name, ar.name) COLLATE NOCASE, al.release_date,
          al.name COLLATE NOCASE, al.rowid
"""
ALBUMS_SQL = """
SELECT al.rowid, coalesce(al.name, ''), al.release_date, aa.artist_rowid
  FROM albums al LEFT JOIN album_artists aa ON aa.album_rowid = al.rowid AND aa.position = 0
"""
FIRST_TRACK_ARTIST_SQL = """
SELECT ta.artist_rowid FROM tracks t JOIN track_artists ta ON ta.track_rowid = t.rowid
 WHERE t.album_rowid = ? ORDER BY t.rowid, ta.position LIMIT 1
"""


@dataclass(slots=True)
class Album:
    rowid: int
    name: str = ""
    year: int | None = None
    artist: int | None = None
    songs: int = 0
    duration_ms: int = 0
    listens: int = 0
    popularity: int = 0
    added: str = ""
    genre: str | None = None


@dataclass
class Snapshot:
    songs: array = field(default_factory=lambda: array("q"))  # track rowids, ascending
    albums: dict[int, Album] = field(default_factory=dict)
    artists: dict[int, tuple[str, str]] = field(default_factory=dict)  # rowid: (name, sort)
    artist_albums: dict[int, list[int]] = field(default_factory=dict)
    genres: dict[str, array] = field(default_factory=dict)  # genre: song rowids
    orders: dict[str, list[int]] = field(default_factory=dict)  # album list orders
    newest: str = ""  # when the newest song's file was added (getIndexes' lastModified)
    album_ids: list[int] = field(default_factory=list)   # ascending: the empty search
    artist_ids: list[int] = field(default_factory=list)  # album artists, ascending
    years: list[int] = field(default_factory=list)       # beside orders["byYear"]
    genre_albums: dict[str, list[int]] = field(default_factory=dict)  # by name
    song_bits: bytearray = field(default_factory=bytearray)  # [rowid] == 1 for a song

    def is_song(self, rowid: int) -> bool:
        """One byte per catalog rowid (1 MB a million): searches test hundreds of matches."""
        return 0 <= rowid < len(self.song_bits) and self.song_bits[rowid] == 1


def _year(date: str | None) -> int | None:
    return int(date[:4]) if date and date[:4].isdigit() else None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a snapshot is built: every few thousand new
    objects would trigger one, and the full ones rescan everything built so far."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def build(conn: sqlite3.Connection) -> Snapshot:
    snap = Snapshot()
    albums = snap.albums
    songs = snap.songs
    last = None
    for rowid, album, duration, listens, popularity, added in conn.execute(SONGS_SQL):
        added = added or ""
        if rowid == last:  # another ok file of the same song
            if album is not None and added > albums[album].added:
                albums[album].added = added
            continue
        last = rowid
        songs.append(rowid)
        if added > snap.newest:
            snap.newest = added
        if album is None:
            continue
        item = albums.get(album)
        if item is None:
            item = albums[album] = Album(album)
        item.songs += 1
        item.duration_ms += duration
        item.listens += listens
        item.popularity += popularity
        if added > item.added:
            item.added = added
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'listen_counts'").fetchone():
        for album, observed in conn.execute(OBSERVED_SQL):
            if album in albums:  # "frequent": the catalog's counts and observed listens
                albums[album].listens += observed
    is_song = snap.song_bits = bytearray((songs[-1] + 1) if songs else 0)
    for rowid in songs:
        is_song[rowid] = 1
    top = len(is_song)
    for rowid, genre in conn.execute(SONG_GENRES_SQL):
        if rowid < top and is_song[rowid]:
            found = snap.genres.get(genre)
            if found is None:
                found = snap.genres[genre] = array("q")
            found.append(rowid)
    for rowid, name, date, artist in conn.execute(ALBUMS_SQL):
        item = albums.get(rowid)
        if item is None:
            continue
        item.name, item.year = name, _year(date)
        item.artist = artist if artist is not None else (
            conn.execute(FIRST_TRACK_ARTIST_SQL, (rowid,)).fetchone() or (None,))[0]
    ids = sorted({a.artist for a in albums.values() if a.artist is not None})
    first_genre: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        marks = ",".join("?" * len(chunk))
        for rowid, name, sort in conn.execute(
                f"SELECT rowid, coalesce(name, ''), coalesce(sort_name, name, '') FROM artists "
                f"WHERE rowid IN ({marks})", chunk):
            snap.artists[rowid] = (name, sort)
        first_genre.update(conn.execute(
            f"SELECT artist_rowid, genre FROM artist_genres WHERE position = 0 "
            f"AND artist_rowid IN ({marks})", chunk).fetchall())
    for item in albums.values():
        if item.artist is not None:
            snap.artist_albums.setdefault(item.artist, []).append(item.rowid)
            item.genre = first_genre.get(item.artist)  # the album artist's first genre

    values = list(albums.values())
    popular = [a.rowid for a in sorted(values, key=lambda a: (-a.listens, -a.popularity,
                                                              a.rowid))]
    snap.orders = {
        "alphabeticalByName": [r for (r,) in conn.execute(BY_NAME_SQL) if r in albums],
        "alphabeticalByArtist": [r for (r,) in conn.execute(BY_ARTIST_SQL) if r in albums],
        "byYear": [a.rowid for a in sorted(values, key=lambda a: (a.year or 0, a.rowid))],
        "newest": [a.rowid for a in sorted(values, key=lambda a: (a.added, a.rowid),
                                           reverse=True)],
        # Known listens first, the popularity score among tracks with none.
        "frequent": popular,
        "highest": popular,
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
    """The current snapshot of one archive. The first is built on first use (or by `warm`,
    in the background, when the server starts); when another connection commits to the
    catalog, a new one is built in the background while requests keep the old one, at most
    once per REBUILD_EVERY seconds (an ingest commits constantly)."""

    def __init__(self, catalog: Path) -> None:
        self._catalog = catalog
        self._lock = threading.Lock()        # guards the fields below
        self._build_lock = threading.Lock()  # one build at a time, on one connection
        self._conn: sqlite3.Connection | None = None
        self._snapshot: Snapshot | None = None
        self._version: int | None = None
        self._checked = 0.0
        self._built = 0.0
        self._building = False

    def _build(self, *, missing_only: bool = False) -> None:
        with self._build_lock:
            if missing_only and self._snapshot is not None:
                return  # another thread built the first one meanwhile
            if self._conn is None:
                self._conn = db.connect(self._catalog, readonly=True)
            conn = self._conn
            # data_version changes when any other connection commits to the catalog.
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            conn.execute("BEGIN")
            try:
                with _collector_paused():
                    snapshot = build(conn)
            finally:
                conn.execute("COMMIT")
            # Hundreds of thousands of objects per million songs that live until the next
            # snapshot: out of the cyclic collector's sight, or each full collection walks
            # them all (0.4 s at 1 M songs, a pause of every request of the process). They
            # hold no reference cycles, so reference counting frees them when replaced.
            gc.freeze()
            with self._lock:
                self._snapshot, self._version = snapshot, version
                self._built = self._checked = time.monotonic()
                self._building = False

    def _changed(self) -> bool:
        with self._build_lock:
            if self._conn is None:
                return True
            return self._conn.execute("PRAGMA data_version").fetchone()[0] != self._version

    def warm(self) -> None:
        """Build the first snapshot in a background thread."""
        threading.Thread(target=self.get, name="subsonic-snapshot", daemon=True).start()

    def current(self) -> Snapshot | None:
        """The snapshot requests read now, or None before the first is built (never waits)."""
        return self._snapshot

    def get(self) -> Snapshot:
        with self._lock:
            snapshot = self._snapshot
            now = time.monotonic()
            due = (snapshot is not None and not self._building
                   and now - self._checked >= CHECK_EVERY
                   and now - self._built >= REBUILD_EVERY)
            if due:
                self._checked = now
        if snapshot is None:
            self._build(missing_only=True)
            assert self._snapshot is not None
            return self._snapshot
        if due and self._changed():
            with self._lock:
                self._building = True
            threading.Thread(target=self._build, name="subsonic-snapshot", daemon=True).start()
        return snapshot
