"""SQLite connections with musicark's pragmas, and versioned migrations."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a catalog database in WAL mode with settings for bulk work and concurrent readers."""
    if readonly:
        roll_back_hot_journal(path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
    conn.isolation_level = None  # we manage transactions explicitly
    conn.execute("PRAGMA busy_timeout = 30000")
    if readonly:
        # Readers (the web server's threads) share the OS page cache through a mapping
        # instead of each copying pages into its own cache.
        conn.execute("PRAGMA mmap_size = 1073741824")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA temp_store = FILE")
    return conn


def roll_back_hot_journal(path: Path) -> None:
    """A killed import into an empty catalog leaves a rollback journal (see catalog.writer);
    only a writable connection may roll it back, so one does, briefly, before a reader opens
    (else every read-only command would fail until something opened the catalog to write)."""
    if not Path(f"{path}-journal").exists() or not os.access(path, os.W_OK):
        return
    conn = sqlite3.connect(path, timeout=0)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # reads the header: rolls back, then WAL
    except sqlite3.OperationalError:
        pass  # a live import holds the journal: it is not hot, nothing to do
    finally:
        conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: Sequence[str],
            steps: Mapping[int, Callable[[sqlite3.Connection], object]] | None = None) -> int:
    """Apply every migration newer than the database's `user_version`, each atomically;
    `steps[version]`, where given, runs in the same transaction after that version's SQL
    (for a change SQL cannot make, such as decoding stored paths)."""
    current = schema_version(conn)
    for version, script in enumerate(migrations, start=1):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_sql(script):
                conn.execute(statement)
            if steps and version in steps:
                steps[version](conn)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return schema_version(conn)


def split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (executescript would auto-commit)."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error or interrupt."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
