"""The search index's vocabulary, so prefixes longer than its prefix indexes stay cheap.

FTS5 answers a prefix with a prefix index ('2 3 4': up to 4 letters) by streaming one
doclist. A longer prefix ("forev*") has no index: FTS5 merges the doclists of every term in
the range into memory before the first row, so its cost grows with the catalog (127 k rows
for "forever" at 1 M tracks; 35-40 ms p99 at 10 M). The same matches come from an OR of the
range's terms, which FTS5 streams in rowid (popularity) order and stops after the pool.

The terms live in `search_terms` (built from fts5vocab, whose own term scans read every
doclist they pass). It is only used while it describes the index: the FTS structure record
it was built from is kept beside it, and any later write to the index (which rewrites that
record) makes search fall back to the plain prefix query until `refresh` runs again (after
every catalog import and mirror merge).
"""

from __future__ import annotations

import sqlite3

PREFIX_INDEX_MAX = 4  # the longest prefix index of track_fts (schema: prefix = '2 3 4')
MAX_TERMS = 64  # an OR of more terms costs more to set up than it saves (≈ 40 µs a term)
STRUCTURE_SQL = "SELECT block FROM main.track_fts_data WHERE id = 10"  # FTS5's structure record


def refresh(conn: sqlite3.Connection) -> int:
    """Rebuild `search_terms` from the index (one pass over it: about 0.25 s CPU per 1 M
    tracks) in its own transaction; returns the number of terms."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        count = rebuild(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return count


def rebuild(conn: sqlite3.Connection) -> int:
    """`refresh` inside the caller's transaction (after the index writes it follows)."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.track_fts_vocab "
                 "USING fts5vocab(main, track_fts, row)")
    conn.execute("DELETE FROM main.search_terms")
    conn.execute("INSERT INTO main.search_terms(term, docs) "
                 "SELECT term, doc FROM temp.track_fts_vocab")
    conn.execute("DELETE FROM main.search_terms_state")
    conn.execute(f"INSERT INTO main.search_terms_state(structure) {STRUCTURE_SQL}")
    return conn.execute("SELECT count(*) FROM main.search_terms").fetchone()[0]


def current(conn: sqlite3.Connection) -> bool:
    """Whether `search_terms` was built from the index as it is now."""
    try:
        row = conn.execute("SELECT structure FROM search_terms_state").fetchone()
    except sqlite3.OperationalError:  # a catalog from before the table
        return False
    now = conn.execute(STRUCTURE_SQL).fetchone()
    return row is not None and now is not None and row[0] == now[0]


def expand(conn: sqlite3.Connection, prefix: str) -> list[str] | None:
    """The index's terms that start with `prefix` (folded, ASCII letters and digits, longer
    than the prefix indexes), or None where the plain prefix query must run instead: another
    prefix, a stale vocabulary, or more than MAX_TERMS terms."""
    if len(prefix) <= PREFIX_INDEX_MAX or not (prefix.isascii() and prefix.isalnum()) \
            or prefix != prefix.lower() or not current(conn):
        return None
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    terms = [t for (t,) in conn.execute(
        "SELECT term FROM search_terms WHERE term >= ? AND term < ? LIMIT ?",
        (prefix, upper, MAX_TERMS + 1))]
    return None if len(terms) > MAX_TERMS else terms
