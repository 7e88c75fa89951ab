"""A release's catalog snapshot is an SQLite file from a stranger: decompress it within a
cap, open it with `trusted_schema=OFF`, compare its schema with the one musicark writes
before any query, and bound every query with a time budget.

- Decompression stops at the smallest of `--max-snapshot-size`, the content size the zstd
  frame declares (the output must be exactly that), and a ratio to the compressed size (a
  SQLite file does not compress a thousandfold; a bomb does); free space is checked first.
  What was written is removed when it stops.
- The schema: no views, no triggers; every table one musicark writes at the snapshot's
  schema version (`user_version`), with the same columns; virtual tables exactly as ours.
  A view or trigger is the only way a query on a table can run code the file chose (a
  recursive view that never ends), so it is refused before anything reads a row.
- Every query on a snapshot runs under a progress handler that interrupts it past its
  time budget (`bounded`): a query that should take seconds cannot take forever.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import zstandard

from musicark.errors import BadQuery

MAX_SNAPSHOT = 100 * 10**9  # bytes, the default of --max-snapshot-size
MAX_RATIO = 1000  # decompressed bytes per compressed byte, past a floor
RATIO_FLOOR = 64 << 20
CHUNK = 1 << 20
CHECK_SECONDS = 60.0  # floor of a query's budget; more for a larger snapshot
SECONDS_PER_GB = 120.0


class SnapshotRefused(BadQuery):
    """A snapshot that is not one musicark wrote, too large, or whose query ran too long."""


def budget(size: int) -> float:
    """Seconds any one query on a snapshot of `size` bytes may take."""
    return CHECK_SECONDS + SECONDS_PER_GB * size / 1e9


def inflate(snap: Path, out: Path, *, max_size: int = MAX_SNAPSHOT) -> int:
    """Decompress `snap` to a new `out` within the caps (see the module docstring);
    returns the size written. SnapshotRefused, with nothing left at `out`, otherwise."""
    packed = snap.stat().st_size
    cap = min(max_size, max(RATIO_FLOOR, packed * MAX_RATIO))
    with open(snap, "rb") as src:
        try:
            declared = zstandard.get_frame_parameters(src.read(18)).content_size
        except zstandard.ZstdError as exc:
            raise SnapshotRefused(f"the catalog snapshot {snap} is not zstd: {exc}") from None
        if declared == zstandard.CONTENTSIZE_UNKNOWN:
            declared = None
        if declared is not None and declared > cap:
            raise SnapshotRefused(
                f"the catalog snapshot {snap} declares {declared:,} bytes, more than the "
                f"{cap:,} allowed (--max-snapshot-size {max_size:,}, at most "
                f"{MAX_RATIO}x its {packed:,} compressed bytes)")
        cap = declared if declared is not None else cap
        free = shutil.disk_usage(out.parent).free
        if declared is not None and declared > free:
            raise SnapshotRefused(f"the catalog snapshot {snap} needs {declared:,} bytes, "
                                  f"{out.parent} has {free:,} free")
        src.seek(0)
        written = 0
        try:
            with open(out, "xb") as dst, zstandard.ZstdDecompressor().stream_reader(
                    src, read_across_frames=True) as reader:
                while chunk := reader.read(CHUNK):
                    written += len(chunk)
                    if written > cap:
                        raise SnapshotRefused(
                            f"the catalog snapshot {snap} inflates past "
                            + (f"the {declared:,} bytes it declares" if declared is not None
                               else f"{cap:,} bytes (--max-snapshot-size {max_size:,}, at "
                                    f"most {MAX_RATIO}x its {packed:,} compressed bytes)"))
                    dst.write(chunk)
                if declared is not None and written != declared:
                    raise SnapshotRefused(f"the catalog snapshot {snap} inflates to "
                                          f"{written:,} bytes, it declares {declared:,}")
                dst.flush()
        except zstandard.ZstdError as exc:
            out.unlink(missing_ok=True)
            raise SnapshotRefused(f"the catalog snapshot {snap} does not decompress: "
                                  f"{exc}") from None
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    return written


@contextmanager
def bounded(conn: sqlite3.Connection, seconds: float, what: str) -> Iterator[None]:
    """Interrupt any query on `conn` running past `seconds` from now (SnapshotRefused)."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc) and time.monotonic() > deadline:
            raise SnapshotRefused(f"{what}: a query took more than {seconds:.0f} s") from None
        raise
    finally:
        conn.set_progress_handler(None, 0)


def untrusted(path: Path) -> sqlite3.Connection:
    """A connection to a snapshot copy that trusts nothing in its schema."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


@lru_cache(maxsize=4)
def reference(version: int) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """The schema musicark writes at `version`: (table → its columns as (name, type,
    hidden), virtual table → its SQL)."""
    from musicark.catalog.schema import MIGRATIONS
    from musicark.db import migrate

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(conn, MIGRATIONS[:version])
        return _schema(conn)
    finally:
        conn.close()


def _schema(conn: sqlite3.Connection, db: str = "main"
            ) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    tables, virtual = {}, {}
    for name, sql in conn.execute(f"SELECT name, sql FROM {db}.sqlite_schema "
                                  "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
                                  "ESCAPE '\\'"):
        if (sql or "").upper().startswith("CREATE VIRTUAL TABLE"):
            virtual[name] = " ".join(sql.split())
        else:
            tables[name] = tuple((r[1], r[2], r[6]) for r in conn.execute(  # name, type,
                f"PRAGMA {db}.table_xinfo({_quote(name)})"))  # hidden (2, 3: generated)
    return tables, virtual


def private_tables() -> set[str]:
    """The tables a snapshot leaves out (`release.snapshot.PRIVATE` drops them)."""
    from musicark.release.snapshot import PRIVATE

    return {s.split()[-1] for s in PRIVATE if s.upper().startswith("DROP TABLE")}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_schema(conn: sqlite3.Connection, name: str, db: str = "main") -> None:
    """SnapshotRefused unless the schema of `db` is one musicark writes (module docstring).
    Reads only sqlite_schema and table_xinfo: nothing the file defines runs."""
    from musicark.catalog.schema import MIGRATIONS

    with bounded(conn, CHECK_SECONDS, name):
        try:
            version = conn.execute(f"PRAGMA {db}.user_version").fetchone()[0]
            odd = conn.execute(f"SELECT type, name FROM {db}.sqlite_schema WHERE type NOT IN "
                               "('table', 'index') LIMIT 1").fetchone()
            tables, virtual = _schema(conn, db)
        except sqlite3.DatabaseError as exc:
            raise SnapshotRefused(f"{name}: SQLite cannot read its schema: {exc}") from None
    if odd is not None:
        raise SnapshotRefused(f"{name}: holds a {odd[0]} ({odd[1][:80]!r}); a musicark "
                              "snapshot has tables and indexes only")
    if not 1 <= version <= len(MIGRATIONS):
        raise SnapshotRefused(f"{name}: schema version {version}, this musicark knows 1 to "
                              f"{len(MIGRATIONS)}")
    want_tables, want_virtual = reference(version)
    private = private_tables()
    for table in sorted(set(tables) | set(want_tables)):
        if table in private and table not in tables:
            continue
        if tables.get(table) != want_tables.get(table):
            raise SnapshotRefused(
                f"{name}: table {table[:80]!r} has columns {tables.get(table)}, musicark's "
                f"schema {version} has {want_tables.get(table)}")
    if virtual != want_virtual:
        raise SnapshotRefused(f"{name}: virtual tables {sorted(virtual)[:5]} are not "
                              f"musicark's {sorted(want_virtual)}")
