"""`verify catalog`: SQLite's own integrity and foreign-key checks, the FTS5 index's
integrity-check, the ledger's invariants, and each release's catalog snapshot.

It opens `catalog.sqlite` itself (not through `Archive.open`, which would migrate it), so a
damaged catalog is reported, not crashed on.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from musicark.archive import CATALOG_NAME
from musicark.verify.report import INVALID, MISMATCH, MISSING, Report
from musicark.verify.snapshot import (
    SnapshotRefused,
    bounded,
    budget,
    check_schema,
    inflate,
    untrusted,
)

INVARIANTS = {
    "derivations whose input file is not in the ledger":
        "SELECT count(*) FROM derivations d LEFT JOIN files f ON f.rowid = d.input_file "
        "WHERE f.rowid IS NULL",
    "derivations whose output file is not in the ledger":
        "SELECT count(*) FROM derivations d LEFT JOIN files f ON f.rowid = d.output_file "
        "WHERE f.rowid IS NULL",
    "derivations whose restore patch is not in the ledger":
        "SELECT count(*) FROM derivations d LEFT JOIN files f ON f.rowid = d.patch_file "
        "WHERE d.patch_file IS NOT NULL AND f.rowid IS NULL",
    "track_files rows pointing at no track":
        "SELECT count(*) FROM track_files tf LEFT JOIN tracks t ON t.rowid = tf.track_rowid "
        "WHERE t.rowid IS NULL",
    "track_files rows pointing at a file that is not ok, withdrawn, damaged or absent":
        "SELECT count(*) FROM track_files tf LEFT JOIN files f ON f.rowid = tf.file_rowid "
        "WHERE f.rowid IS NULL OR f.status NOT IN ('ok', 'withdrawn', 'damaged', 'absent')",
    "release_files rows pointing at no ledger file":
        "SELECT count(*) FROM release_files rf LEFT JOIN files f ON f.rowid = rf.file_rowid "
        "WHERE f.rowid IS NULL",
    "torrents of no release":
        "SELECT count(*) FROM torrents t LEFT JOIN releases r ON r.id = t.release_id "
        "WHERE r.id IS NULL",
    "ledger files without a SHA-256 that are not quarantined":
        "SELECT count(*) FROM files WHERE sha256 IS NULL AND status != 'quarantined'",
}


def open_catalog(path: Path, report: Report) -> sqlite3.Connection | None:
    if not path.is_file():
        report.add("catalog", str(path), MISSING, "catalog.sqlite is missing")
        return None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.DatabaseError as exc:
        report.add("catalog", str(path), INVALID, f"SQLite cannot open it: {exc}")
        return None


def check_database(conn: sqlite3.Connection, name: str, report: Report,
                   *, ledger: bool = True) -> None:
    """integrity_check, foreign_key_check, FTS5 integrity-check and ledger invariants."""
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(100)")]
    except sqlite3.DatabaseError as exc:
        report.add("catalog", name, INVALID, f"integrity_check fails: {exc}")
        return
    if rows != ["ok"]:
        for row in rows[:20]:
            report.add("catalog", name, INVALID, f"integrity_check: {row}")
        return
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
        report.add("catalog", name, MISMATCH, f"{table} row {rowid} refers to no {parent} row")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "track_fts" in tables:
        try:
            conn.execute("INSERT INTO track_fts(track_fts, rank) VALUES ('integrity-check', 0)")
        except sqlite3.DatabaseError as exc:
            report.add("catalog", name, INVALID,
                       f"the search index (track_fts) fails FTS5's integrity-check: {exc}")
    if not ledger:
        return
    for what, sql in INVARIANTS.items():
        try:
            count = conn.execute(sql).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            report.add("catalog", name, INVALID, f"cannot check {what}: {exc}")
            continue
        if count:
            report.add("catalog", name, MISMATCH, f"{count:,} {what}")


def check_snapshot(path: Path, report: Report) -> None:
    """A release's catalog snapshot: its zstd frame checksum, then SQLite's own checks."""
    if not path.is_file():
        report.add("catalog", str(path), MISSING, "release catalog snapshot is missing")
        return
    with tempfile.TemporaryDirectory(prefix="musicark-snapshot-") as tmp:
        raw = Path(tmp) / "snapshot.sqlite"
        try:
            size = inflate(path, raw)
            conn = untrusted(raw)  # a private copy
            try:
                check_schema(conn, str(path))
                with bounded(conn, budget(size), str(path)):
                    check_database(conn, str(path), report, ledger=False)
            finally:
                conn.close()
        except SnapshotRefused as exc:
            report.add("catalog", str(path), INVALID, str(exc))
            return
        report.bytes += path.stat().st_size
        report.files += 1


def snapshot_paths(conn: sqlite3.Connection, archive_path: Path) -> list[Path]:
    rows = conn.execute("SELECT r.name, t.name FROM torrents t JOIN releases r "
                        "ON r.id = t.release_id WHERE t.metadata = 1 ORDER BY t.id").fetchall()
    return [archive_path / "releases" / rel / "metadata" / tname / "catalog.sqlite.zst"
            for rel, tname in rows]


def verify_catalog(archive_path: Path) -> Report:
    began = time.monotonic()
    report = Report("catalog")
    path = Path(archive_path) / CATALOG_NAME
    conn = open_catalog(path, report)
    if conn is None:
        return report
    try:
        check_database(conn, str(path), report)
        report.files += 1
        report.bytes += path.stat().st_size
        if not report.damaged:
            for snap in snapshot_paths(conn, Path(archive_path)):
                check_snapshot(snap, report)
    finally:
        conn.close()
    report.seconds = time.monotonic() - began
    return report
