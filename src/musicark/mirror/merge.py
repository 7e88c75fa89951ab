"""Merge a release's catalog snapshot into this archive's catalog by source and id.

Sources are matched by name, markets by their codes, artists, albums and tracks by
(source, ext_id), plans by (created_at, options, summary). A row already here is kept as it
is (a minimal catalog's track is filled in from the snapshot); a new row keeps the
publisher's rowid when it is free here, so a mirror started empty has the publisher's rowids
(its own `release create` then names tracks as the publisher did), else it gets the next
free one. The snapshot's ledger is not merged here: only files this mirror holds get rows
(`musicark.mirror.register`). Listens and the snapshot's earlier releases are not merged.
"""

from __future__ import annotations

import sqlite3

from musicark.catalog import terms
from musicark.catalog.writer import SEARCH_KEY_SQL

ENTITIES = (  # table, its mapped columns (column → the mapping table of its target)
    ("artists", {"source_id": "m_sources"}),
    ("albums", {"source_id": "m_sources", "markets_rowid": "m_markets"}),
    ("tracks", {"source_id": "m_sources", "album_rowid": "m_albums",
                "markets_rowid": "m_markets"}),
)
LINKS = (  # table, its parent column and mapping, other mapped columns
    ("artist_genres", "artist_rowid", "m_artists", {}),
    ("album_artists", "album_rowid", "m_albums", {"artist_rowid": "m_artists"}),
    ("track_artists", "track_rowid", "m_tracks", {"artist_rowid": "m_artists"}),
    ("audio_features", "track_rowid", "m_tracks", {}),
)


def columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _common(conn: sqlite3.Connection, table: str) -> list[str]:
    here = columns(conn, "main", table)
    there = set(columns(conn, "snap", table))
    return [c for c in here if c in there and c != "rowid"]


def _map_table(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
    conn.execute(f"CREATE TEMP TABLE {name} (old INTEGER PRIMARY KEY, new INTEGER, "
                 "fresh INTEGER NOT NULL DEFAULT 0)")


def _assign_fresh(conn: sqlite3.Connection, name: str, table: str, key: str = "rowid") -> None:
    """Rows of snap.`table` not mapped yet are new: keep their id where it is free."""
    conn.execute(f"INSERT INTO {name}(old, new, fresh) SELECT s.{key}, CASE WHEN NOT EXISTS "
                 f"(SELECT 1 FROM main.{table} t WHERE t.{key} = s.{key}) THEN s.{key} END, 1 "
                 f"FROM snap.{table} s WHERE s.{key} NOT IN (SELECT old FROM {name})")
    top = conn.execute(f"SELECT max(coalesce((SELECT max({key}) FROM main.{table}), 0), "
                       f"coalesce((SELECT max(new) FROM {name}), 0))").fetchone()[0]
    conn.execute(f"WITH r AS (SELECT old, row_number() OVER (ORDER BY old) AS n FROM {name} "
                 f"WHERE new IS NULL) UPDATE {name} SET new = ? + (SELECT n FROM r "
                 f"WHERE r.old = {name}.old) WHERE new IS NULL", (top,))


def _mapped(column: str, mappings: dict[str, str]) -> str:
    if column in mappings:
        return f"(SELECT new FROM {mappings[column]} WHERE old = s.{column})"
    return f"s.{column}"


def merge_sources(conn: sqlite3.Connection) -> list[int]:
    """Map sources by name (new ones keep their id if free); returns the ids of minimal
    sources the snapshot now describes in full."""
    _map_table(conn, "m_sources")
    conn.execute("INSERT INTO m_sources(old, new) SELECT s.id, m.id FROM snap.sources s "
                 "JOIN main.sources m ON m.name = s.name")
    filled = [r[0] for r in conn.execute(
        "SELECT m.id FROM main.sources m JOIN snap.sources s ON s.name = m.name "
        "WHERE m.kind = 'minimal'")]
    for source_id in filled:
        conn.execute("UPDATE main.sources SET (kind, licence, status, imported_at, report) = "
                     "(SELECT s.kind, s.licence, s.status, s.imported_at, s.report FROM "
                     "snap.sources s WHERE s.name = main.sources.name) WHERE id = ?",
                     (source_id,))
    _assign_fresh(conn, "m_sources", "sources", "id")
    cols = [c for c in _common(conn, "sources") if c not in ("id", "uri", "options")]
    conn.execute(f"INSERT INTO main.sources(id, {', '.join(cols)}) SELECT m.new, "
                 f"{', '.join('s.' + c for c in cols)} FROM snap.sources s "
                 f"JOIN m_sources m ON m.old = s.id AND m.fresh = 1")
    return filled


def merge_markets(conn: sqlite3.Connection) -> None:
    _map_table(conn, "m_markets")
    conn.execute("INSERT INTO m_markets(old, new) SELECT s.rowid, m.rowid FROM snap.markets s "
                 "JOIN main.markets m ON m.codes = s.codes")
    _assign_fresh(conn, "m_markets", "markets")
    conn.execute("INSERT INTO main.markets(rowid, codes) SELECT m.new, s.codes FROM "
                 "snap.markets s JOIN m_markets m ON m.old = s.rowid AND m.fresh = 1")


def merge_entity(conn: sqlite3.Connection, table: str, mappings: dict[str, str],
                 filled_sources: list[int]) -> None:
    name = f"m_{table}"
    _map_table(conn, name)
    conn.execute(f"INSERT INTO {name}(old, new) SELECT s.rowid, t.rowid FROM snap.{table} s "
                 f"JOIN m_sources ms ON ms.old = s.source_id JOIN main.{table} t "
                 f"ON t.source_id = ms.new AND t.ext_id = s.ext_id WHERE s.ext_id IS NOT NULL")
    _assign_fresh(conn, name, table)
    cols = _common(conn, table)
    values = ", ".join(_mapped(c, mappings) for c in cols)
    conn.execute(f"INSERT INTO main.{table}(rowid, {', '.join(cols)}) SELECT m.new, {values} "
                 f"FROM snap.{table} s JOIN {name} m ON m.old = s.rowid AND m.fresh = 1 "
                 "ORDER BY m.new")
    if filled_sources:  # a minimal catalog's rows: the snapshot knows them in full
        keep = {"source_id", "ext_id"}
        sets = [c for c in cols if c not in keep]
        marks = ",".join("?" * len(filled_sources))
        conn.execute(f"UPDATE main.{table} SET ({', '.join(sets)}) = (SELECT "
                     f"{', '.join(_mapped(c, mappings) for c in sets)} FROM snap.{table} s "
                     f"JOIN {name} m ON m.old = s.rowid WHERE m.new = main.{table}.rowid) "
                     f"WHERE source_id IN ({marks}) AND rowid IN (SELECT new FROM {name})",
                     filled_sources)
        conn.execute(f"UPDATE {name} SET fresh = 2 WHERE new IN (SELECT rowid FROM "
                     f"main.{table} WHERE source_id IN ({marks}))", filled_sources)


def merge_links(conn: sqlite3.Connection) -> None:
    """Link rows of new (or filled-in) parents only: a parent already here keeps its own."""
    for table, parent, mapping, others in LINKS:
        cols = _common(conn, table)
        values = ", ".join(_mapped(c, {parent: mapping, **others}) for c in cols)
        conn.execute(f"DELETE FROM main.{table} WHERE {parent} IN (SELECT new FROM {mapping} "
                     "WHERE fresh = 2)")
        conn.execute(f"INSERT OR IGNORE INTO main.{table}({', '.join(cols)}) SELECT {values} "
                     f"FROM snap.{table} s JOIN {mapping} m ON m.old = s.{parent} "
                     "AND m.fresh > 0")


SEARCH_ROWS = f"""
    SELECT {SEARCH_KEY_SQL}, t.name, a.names, al.name
      FROM tracks t
      LEFT JOIN (SELECT track_rowid, group_concat(name, ' ') AS names
                   FROM (SELECT ta.track_rowid, ar.name FROM track_artists ta
                           JOIN artists ar ON ar.rowid = ta.artist_rowid
                          WHERE ta.track_rowid IN ({{rows}})
                          ORDER BY ta.track_rowid, ta.position)
                  GROUP BY track_rowid) a ON a.track_rowid = t.rowid
      LEFT JOIN albums al ON al.rowid = t.album_rowid
     WHERE t.rowid IN ({{rows}})
"""


def index_tracks(conn: sqlite3.Connection, rows_sql: str, *, delete: bool = False) -> None:
    """Add (or, with `delete`, take out) the search index rows of the tracks `rows_sql`
    selects; a delete passes back exactly the values indexed (contentless FTS5)."""
    query = SEARCH_ROWS.format(rows=rows_sql)
    if delete:
        conn.execute("INSERT INTO track_fts(track_fts, rowid, name, artists, album) "
                     f"SELECT 'delete', * FROM ({query})")
    else:
        conn.execute(f"INSERT INTO track_fts(rowid, name, artists, album) SELECT * FROM "
                     f"({query}) ORDER BY 1")


def merge_plans(conn: sqlite3.Connection) -> None:
    _map_table(conn, "m_plans")
    conn.execute("INSERT INTO m_plans(old, new) SELECT s.id, m.id FROM snap.plans s JOIN "
                 "main.plans m ON m.created_at = s.created_at AND m.options = s.options "
                 "AND m.summary = s.summary")
    _assign_fresh(conn, "m_plans", "plans", "id")
    cols = [c for c in _common(conn, "plans") if c != "id"]
    conn.execute(f"INSERT INTO main.plans(id, {', '.join(cols)}) SELECT m.new, "
                 f"{', '.join('s.' + c for c in cols)} FROM snap.plans s JOIN m_plans m "
                 "ON m.old = s.id AND m.fresh = 1")
    cols = _common(conn, "plan_items")
    values = ", ".join(_mapped(c, {"plan_id": "m_plans", "track_rowid": "m_tracks"})
                       for c in cols)
    conn.execute(f"INSERT OR IGNORE INTO main.plan_items({', '.join(cols)}) SELECT {values} "
                 "FROM snap.plan_items s JOIN m_plans m ON m.old = s.plan_id AND m.fresh = 1")
    conn.execute("INSERT OR IGNORE INTO main.tombstones(kind, ref, reason, at) SELECT "
                 "'track', m.new, s.reason, s.at FROM snap.tombstones s JOIN m_tracks m "
                 "ON m.old = s.ref WHERE s.kind = 'track'")


def merge_catalog(conn: sqlite3.Connection) -> dict[str, int]:
    """Merge the attached snapshot (`snap`) into main, inside the caller's transaction;
    returns how many rows each table gained."""
    before = {t: conn.execute(f"SELECT count(*) FROM main.{t}").fetchone()[0]
              for t in ("sources", "artists", "albums", "tracks", "plans")}
    filled = merge_sources(conn)
    merge_markets(conn)
    for table, mappings in ENTITIES:
        if table == "tracks" and filled:  # their index rows change with them
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS m_refill (rowid INTEGER PRIMARY KEY)")
            conn.execute("DELETE FROM m_refill")
            conn.execute("INSERT INTO m_refill SELECT t.rowid FROM main.tracks t JOIN "
                         "snap.tracks s ON s.ext_id = t.ext_id JOIN m_sources ms "
                         f"ON ms.old = s.source_id AND ms.new = t.source_id WHERE t.source_id "
                         f"IN ({','.join(str(int(i)) for i in filled)})")
            index_tracks(conn, "SELECT rowid FROM m_refill", delete=True)
        merge_entity(conn, table, mappings, filled)
    merge_links(conn)
    index_tracks(conn, "SELECT new FROM m_tracks WHERE fresh > 0")
    terms.rebuild(conn)  # the prefix vocabulary follows the index (catalog.terms)
    merge_plans(conn)
    return {t: conn.execute(f"SELECT count(*) FROM main.{t}").fetchone()[0] - n
            for t, n in before.items()}
