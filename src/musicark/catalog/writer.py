"""CatalogWriter: one atomic, batched import of one source into the catalog.

The whole source is written in a single transaction: a killed import leaves nothing behind and
can simply be run again. Rowids are allocated here (we hold the write lock), so inserts are
buffered and sent with `executemany` in batches; key → rowid resolution goes through a bounded
cache, then the unflushed buffer, then an index lookup, so memory stays constant.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from musicark.archive import Archive, utc_now
from musicark.catalog.keys import HashedRowids, KeyResolver
from musicark.catalog.schema import SECONDARY_INDEXES, TRACKS_EXT_INDEX
from musicark.errors import BadSource, SourceExists

BATCH = 20_000
MARKET_CACHE = 100_000
MAX_REPORTED_BAD_ROWS = 1_000

TRACK_COLUMNS = (
    "rowid", "source_id", "ext_id", "mbid", "name", "album_rowid", "disc_number",
    "track_number", "duration_ms", "explicit", "isrc", "popularity", "listens",
    "markets_rowid", "extra", "diff",
)
ALBUM_COLUMNS = (
    "rowid", "source_id", "ext_id", "mbid", "name", "album_type", "release_date",
    "release_date_precision", "upc", "label", "total_tracks", "popularity", "markets_rowid",
    "extra", "embed_extra", "diff",
)
ARTIST_COLUMNS = (
    "rowid", "source_id", "ext_id", "mbid", "name", "sort_name", "popularity", "followers",
    "extra", "embed_extra", "diff",
)
FEATURE_COLUMNS = (
    "track_rowid", "tempo", "key", "mode", "loudness", "time_signature", "danceability",
    "energy", "valence", "acousticness", "instrumentalness", "liveness", "speechiness",
)
TABLE_COLUMNS = {
    "tracks": TRACK_COLUMNS,
    "albums": ALBUM_COLUMNS,
    "artists": ARTIST_COLUMNS,
    "track_artists": ("track_rowid", "position", "artist_rowid", "join_phrase"),
    "album_artists": ("album_rowid", "position", "artist_rowid"),
    "artist_genres": ("artist_rowid", "position", "genre"),
    "audio_features": FEATURE_COLUMNS,
}


def dumps(value: Any) -> str:
    """Compact JSON that SQLite can always store (lone surrogates fall back to \\u escapes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return text


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did: counts per entity, bad rows with line numbers and reasons."""

    source: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    bad_rows: int = 0
    bad_row_samples: list[BadRow] = field(default_factory=list)
    duplicates: int = 0
    unmapped_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    def bad(self, line: int, reason: str) -> None:
        self.bad_rows += 1
        if len(self.bad_row_samples) < MAX_REPORTED_BAD_ROWS:
            self.bad_row_samples.append(BadRow(line, reason))

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "kind": self.kind,
            "counts": dict(self.counts),
            "bad_rows": self.bad_rows,
            "bad_row_samples": [{"line": b.line, "reason": b.reason} for b in self.bad_row_samples],
            "duplicates": self.duplicates,
            "unmapped_columns": list(self.unmapped_columns),
            "seconds": round(self.seconds, 3),
            "phase_seconds": {k: round(v, 3) for k, v in self.phases.items()},
        }


class CatalogWriter:
    """Writes one source. Use as a context manager; leaving it normally commits the source."""

    def __init__(
        self,
        archive: Archive,
        *,
        name: str,
        kind: str,
        uri: str | None = None,
        licence: str | None = None,
        options: dict | None = None,
        replace: bool = False,
        phase: Callable[[str], None] = lambda name: None,
    ) -> None:
        self.archive = archive
        self._tell = phase  # told the name of each long step after the input is read
        self._phase_name = "reading"
        self._phase_started = self._started = time.monotonic()
        self.conn: sqlite3.Connection = archive.conn
        self.report = ImportReport(source=name, kind=kind)
        self._meta = (name, kind, uri, licence, dumps(options or {}))
        self._replace = replace
        self._buffers: dict[str, list[tuple]] = {t: [] for t in TABLE_COLUMNS}
        self._next: dict[str, int] = {}
        self._markets: dict[str, int] = {}
        self._dropped_indexes: dict[str, str] = {}
        self.track_ids: HashedRowids | None = None
        self._updates: dict[tuple[str, int], dict[str, Any]] = {}
        self.source_id = 0
        self.tracks = KeyResolver(lambda keys: self._lookup("tracks", keys))
        self.albums = KeyResolver(lambda keys: self._lookup("albums", keys))
        self.artists = KeyResolver(lambda keys: self._lookup("artists", keys))
        self._keys: dict[str, KeyResolver] = {}

    def phase(self, name: str) -> None:
        """Start a named step: the caller hears of it, the report times it."""
        now = time.monotonic()
        phases = self.report.phases
        phases[self._phase_name] = phases.get(self._phase_name, 0.0) + now - self._phase_started
        self._phase_name, self._phase_started = name, now
        if name != "done":
            self._tell(name)

    # -- transaction -----------------------------------------------------------------------
    def __enter__(self) -> CatalogWriter:
        conn = self.conn
        # 128 MiB of page cache, and a soft heap limit so index sorts stay within ~1 GiB RSS.
        conn.execute("PRAGMA cache_size = -131072")
        conn.execute("PRAGMA soft_heap_limit = 402653184")
        # Large sorts (index builds, the search-key ORDER BY) may merge on a second core.
        conn.execute(f"PRAGMA threads = {min(4, os.cpu_count() or 1)}")
        self._rollback_journal = self._use_rollback_journal()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._start()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
                self.conn.execute("COMMIT")
                self.phase("done")
                self.report.seconds = time.monotonic() - self._started
            else:
                self.conn.execute("ROLLBACK")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self.conn.execute("PRAGMA cache_size = -65536")
            self.conn.execute("PRAGMA soft_heap_limit = 0")
            self.conn.execute("PRAGMA threads = 0")
            if self._rollback_journal:
                self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("DROP TABLE IF EXISTS temp.import_keys")

    def _use_rollback_journal(self) -> bool:
        """Fill a catalog that has no catalog rows yet through a rollback journal, not the WAL.

        SQLite journals only the pages that existed before a transaction, so every new page is
        written once, straight into the database file, where the WAL writes it twice (to the
        WAL, then at the checkpoint). The commit stays atomic: a killed import leaves a hot
        journal that the next connection rolls back, cutting the file to its old size. Only
        possible while no other connection has the catalog open; else the WAL is kept.
        """
        conn = self.conn
        if conn.execute("SELECT EXISTS (SELECT 1 FROM tracks) OR EXISTS (SELECT 1 FROM albums) "
                        "OR EXISTS (SELECT 1 FROM artists)").fetchone()[0]:
            return False
        timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlite3.OperationalError:  # another connection holds the catalog open
            mode = "wal"
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        return mode == "delete"

    def _start(self) -> None:
        name, kind, uri, licence, options = self._meta
        row = self.conn.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()
        if row is not None:
            if not self._replace:
                raise SourceExists(
                    f"a source named {name!r} is already in the catalog "
                    "(replace it with --replace, or import under another --name)"
                )
            delete_source_rows(self.conn, row[0])
            self.conn.execute("DELETE FROM sources WHERE id = ?", (row[0],))
        cur = self.conn.execute(
            "INSERT INTO sources(name, kind, uri, licence, options, status) "
            "VALUES (?, ?, ?, ?, ?, 'importing')",
            (name, kind, uri, licence, options),
        )
        self.source_id = cur.lastrowid
        for table in ("tracks", "albums", "artists"):
            top = self.conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
            self._next[table] = (top or 0) + 1
        # An empty catalog gets its secondary indexes built once at the end, by sorting.
        if self._next["tracks"] == 1:
            for index in SECONDARY_INDEXES:
                self.conn.execute(f"DROP INDEX IF EXISTS {index}")
                self._dropped_indexes[index] = SECONDARY_INDEXES[index]

    def _finish(self) -> None:
        self.phase("writing rows")
        self.flush()
        if self._dropped_indexes:
            self.phase("building indexes")
        for statement in self._dropped_indexes.values():
            self.conn.execute(statement)
        self.phase("building the search index")
        build_search_index(self.conn, self.source_id)
        self.phase("committing")
        counts = {
            table: self.conn.execute(
                f"SELECT count(*) FROM {table} WHERE source_id = ?", (self.source_id,)
            ).fetchone()[0]
            for table in ("tracks", "albums", "artists")
        }
        self.report.counts = counts
        if self.report.bad_rows and not any(counts.values()):
            first = self.report.bad_row_samples[0]
            raise BadSource(
                f"not one of the {self.report.bad_rows:,} records could be imported, so no "
                f"source was recorded (first: line {first.line}: {first.reason})")
        self.report.seconds = time.monotonic() - self._started
        self.conn.execute(
            "UPDATE sources SET status = 'complete', imported_at = ?, report = ? WHERE id = ?",
            (utc_now(), dumps(self.report.as_dict()), self.source_id),
        )
        self.archive.record_event(
            "catalog.import", self._meta[0], "ok",
            {"kind": self._meta[1], "counts": counts, "bad_rows": self.report.bad_rows},
        )

    def defer_track_ids(self) -> bool:
        """On an empty catalog, build the unique track-id index once at the end (a sort)
        instead of row by row; the importer then finds repeated ids with `track_ids` (hashes
        and rowids) and must not insert them. Returns whether it is deferred."""
        if not self._dropped_indexes:
            return False
        self.conn.execute("DROP INDEX tracks_ext")
        self._dropped_indexes["tracks_ext"] = TRACKS_EXT_INDEX
        self.track_ids = HashedRowids()
        return True

    # -- ids and keys ----------------------------------------------------------------------
    def _lookup(self, table: str, ext_ids: list[Any]) -> dict[Any, int]:
        self.flush()
        found: dict[Any, int] = {}
        for i in range(0, len(ext_ids), 900):
            part = ext_ids[i:i + 900]
            found.update(self.conn.execute(
                f"SELECT ext_id, rowid FROM {table} WHERE source_id = ? AND ext_id IN "
                f"({','.join('?' * len(part))})", [self.source_id, *part]).fetchall())
        return found

    def key_resolver(self, kind: str) -> KeyResolver:
        """A resolver for rows that have no external id, keyed by any text (e.g. a name)."""
        if kind not in self._keys:
            self.conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS import_keys "
                "(kind TEXT, key TEXT, rowid INTEGER, PRIMARY KEY (kind, key)) WITHOUT ROWID"
            )

            def lookup(keys: list[Any], kind: str = kind) -> dict[Any, int]:
                self.flush()
                found: dict[Any, int] = {}
                for i in range(0, len(keys), 900):
                    part = keys[i:i + 900]
                    found.update(self.conn.execute(
                        "SELECT key, rowid FROM temp.import_keys WHERE kind = ? AND key IN "
                        f"({','.join('?' * len(part))})", [kind, *part]).fetchall())
                return found

            self._keys[kind] = KeyResolver(lookup)
        return self._keys[kind]

    def market_rowid(self, codes: Sequence[str]) -> int:
        """Each distinct market list is stored once, as a JSON array in its given order."""
        text = dumps(list(codes))
        rowid = self._markets.get(text)
        if rowid is None:
            row = self.conn.execute("SELECT rowid FROM markets WHERE codes = ?", (text,)).fetchone()
            if row is None:
                cur = self.conn.execute("INSERT INTO markets(codes) VALUES (?)", (text,))
                row = (cur.lastrowid,)
            rowid = row[0]
            if len(self._markets) < MARKET_CACHE:
                self._markets[text] = rowid
        return rowid

    # -- inserts ---------------------------------------------------------------------------
    def allocate(self, table: str, n: int) -> int:
        """Reserve `n` consecutive rowids for rows the caller inserts itself; returns the first."""
        start = self._next[table]
        self._next[table] = start + n
        return start

    def _insert(self, table: str, resolver: KeyResolver | None, cols: dict[str, Any]) -> int:
        rowid = self._next[table]
        self._next[table] = rowid + 1
        cols["rowid"] = rowid
        cols["source_id"] = self.source_id
        self._append(table, cols)
        if resolver is not None and cols.get("ext_id") is not None:
            resolver.add(cols["ext_id"], rowid)
        return rowid

    def insert_many(self, table: str, n: int, cols: dict[str, Any],
                    resolver: KeyResolver | None = None, keys: list[Any] | None = None) -> int:
        """Insert `n` rows given column-wise (lists, or one value for all); returns the first
        rowid. Rows go to SQLite at once; `keys` are registered with `resolver`."""
        start = self.allocate(table, n)
        names = TABLE_COLUMNS[table]
        rowids = list(range(start, start + n))
        values = {"rowid": rowids, "source_id": itertools.repeat(self.source_id), **cols}
        series = [values[c] if c in values else itertools.repeat(None) for c in names]
        series = [itertools.repeat(v) if not isinstance(v, list | itertools.repeat) else v
                  for v in series]
        self.conn.executemany(
            f"INSERT INTO {table}({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            zip(*series, strict=False),
        )
        if resolver is not None and keys is not None:
            # Rows keyed by ext_id are findable in their table at once; other keys go to the
            # import's key table at the next flush.
            in_table = resolver in (self.tracks, self.albums, self.artists)
            resolver.add_many(keys, rowids, pending=not in_table)
        return start

    def insert_track(self, **cols: Any) -> int:
        return self._insert("tracks", self.tracks, cols)

    def insert_album(self, **cols: Any) -> int:
        return self._insert("albums", self.albums, cols)

    def insert_artist(self, **cols: Any) -> int:
        return self._insert("artists", self.artists, cols)

    def link_track_artists(
        self, track_rowid: int, artists: Iterable[tuple[int, str | None]]
    ) -> None:
        for position, (artist_rowid, join_phrase) in enumerate(artists):
            self._append("track_artists", {
                "track_rowid": track_rowid, "position": position,
                "artist_rowid": artist_rowid, "join_phrase": join_phrase,
            })

    def link_album_artists(self, album_rowid: int, artist_rowids: Iterable[int]) -> None:
        for position, artist_rowid in enumerate(artist_rowids):
            self._append("album_artists", {
                "album_rowid": album_rowid, "position": position, "artist_rowid": artist_rowid,
            })

    def add_genres(self, artist_rowid: int, genres: Iterable[str]) -> None:
        for position, genre in enumerate(genres):
            self._append("artist_genres", {
                "artist_rowid": artist_rowid, "position": position, "genre": genre,
            })

    def add_audio_features(self, **cols: Any) -> None:
        self._append("audio_features", cols)

    def set_later(self, table: str, rowid: int, cols: dict[str, Any]) -> None:
        """Change columns of a row written earlier in this import, at the next flush."""
        self._updates.setdefault((table, rowid), {}).update(cols)

    def _append(self, table: str, cols: dict[str, Any]) -> None:
        buf = self._buffers[table]
        buf.append(tuple(map(cols.get, TABLE_COLUMNS[table])))
        if len(buf) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Send every buffered row to SQLite (parents before links)."""
        for table, columns in TABLE_COLUMNS.items():
            buf = self._buffers[table]
            if buf:
                marks = ", ".join("?" * len(columns))
                self.conn.executemany(
                    f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})", buf
                )
                buf.clear()
        for (table, rowid), cols in self._updates.items():
            assignments = ", ".join(f"{c} = ?" for c in cols)
            self.conn.execute(
                f"UPDATE {table} SET {assignments} WHERE rowid = ?", (*cols.values(), rowid)
            )
        self._updates.clear()
        for resolver in (self.tracks, self.albums, self.artists):
            resolver.pending.clear()
        for kind, resolver in self._keys.items():
            if resolver.pending:
                self.conn.executemany(
                    "INSERT INTO temp.import_keys(kind, key, rowid) VALUES (?, ?, ?)",
                    [(kind, k, r) for k, r in resolver.pending.items()],
                )
                resolver.pending.clear()


# The full-text index's rowid is the track's "search key": popularity first, so that FTS5
# streams every match in popularity order and a query stops after its first results; the low
#40 bits hold the track rowid.
SEARCH_KEY_BITS = 40
SEARCH_KEY_SQL = (
    f"(((100 - min(max(coalesce(t.popularity, 0), 0), 100)) << {SEARCH_KEY_BITS}) | t.rowid)"
)


def search_rows_sql(source_param: str = "?") -> str:
    """The (search key, name, artists, album) rows indexed for one source's tracks.

    Inserts and deletes of the contentless FTS table both use this one query, so a delete
    always passes back exactly the values that were indexed.
    """
    # Artist names come from a correlated subquery, read in credit order along the primary
    # key (track_rowid, position): cheaper than grouping every credit of the source first.
    return f"""
        SELECT {SEARCH_KEY_SQL}, t.name,
               (SELECT group_concat(ar.name, ' ') FROM track_artists ta
                  JOIN artists ar ON ar.rowid = ta.artist_rowid
                 WHERE ta.track_rowid = t.rowid),
               al.name
          FROM tracks t
          LEFT JOIN albums al ON al.rowid = t.album_rowid
         WHERE t.source_id = {source_param}
    """


def build_search_index(conn: sqlite3.Connection, source_id: int) -> None:
    """Index the source's tracks for full-text search: track name, artist names, album name."""
    # In key order: FTS5 builds its doclists fastest when rowids arrive ascending (2x here).
    conn.execute(
        "INSERT INTO track_fts(rowid, name, artists, album) SELECT * FROM ("
        + search_rows_sql(":s") + ") ORDER BY 1",
        {"s": source_id},
    )


def delete_source_rows(conn: sqlite3.Connection, source_id: int) -> None:
    """Remove everything one source brought into the catalog (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO track_fts(track_fts, rowid, name, artists, album) "
        "SELECT 'delete', * FROM (" + search_rows_sql(":s") + ")",
        {"s": source_id},
    )
    track_rows = "SELECT rowid FROM tracks WHERE source_id = ?"
    conn.execute(f"DELETE FROM track_artists WHERE track_rowid IN ({track_rows})", (source_id,))
    conn.execute(f"DELETE FROM audio_features WHERE track_rowid IN ({track_rows})", (source_id,))
    album_rows = "SELECT rowid FROM albums WHERE source_id = ?"
    conn.execute(f"DELETE FROM album_artists WHERE album_rowid IN ({album_rows})", (source_id,))
    artist_rows = "SELECT rowid FROM artists WHERE source_id = ?"
    conn.execute(f"DELETE FROM artist_genres WHERE artist_rowid IN ({artist_rows})", (source_id,))
    for table in ("tracks", "albums", "artists"):
        conn.execute(f"DELETE FROM {table} WHERE source_id = ?", (source_id,))
