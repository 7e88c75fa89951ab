"""`repair --catalog-from RELEASE`: rebuild catalog.sqlite from a release's metadata
snapshot when SQLite's own recovery cannot save it.

The snapshot is checked (its torrent, when at hand, and zstd's frame checksum), decompressed
beside the catalog, checked by SQLite, given back the tables a snapshot leaves out (events,
file_paths; empty), and renamed over the damaged catalog, which is moved to store/damaged/.
Releases the snapshot cannot know (its own, whose rows are written after the snapshot, and
later ones) are recorded again from their torrents.json and files.jsonl. The report says what
the snapshot lacks, so the operator knows what to redo.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from musicark.archive import CATALOG_NAME, Archive, utc_now
from musicark.catalog.schema import MIGRATION_1, MIGRATION_2, MIGRATION_15
from musicark.db import split_sql
from musicark.errors import BadQuery
from musicark.ingest.store import _fsync_dir
from musicark.release.schema import read_jsonl, read_listing, track_ref
from musicark.trust import Refused, regular_file
from musicark.verify.catalog import check_database
from musicark.verify.releases import check_tree
from musicark.verify.report import Report
from musicark.verify.snapshot import (
    MAX_SNAPSHOT,
    bounded,
    budget,
    check_schema,
    inflate,
    untrusted,
)
from musicark.verify.store import stamp
from musicark.verify.torrent import BadTorrent, load_expectations

PRIVATE_TABLES = ("events", "file_paths", "ingest_runs", "ingest_skips")


def find_snapshot(archive_path: Path, release: str | Path) -> tuple[Path, Path | None]:
    """(snapshot file, its torrent if found) for a release name, directory or file."""
    candidate = Path(release).expanduser()
    if not candidate.exists():
        candidate = archive_path / "releases" / str(release)
    if candidate.is_file():
        return candidate, None
    snaps = sorted(candidate.glob("metadata/*/catalog.sqlite.zst")) or \
        sorted(candidate.glob("catalog.sqlite.zst"))
    if not snaps:
        raise BadQuery(f"no catalog snapshot (metadata/*/catalog.sqlite.zst) in {candidate}")
    try:  # a regular file inside the release, never a link to elsewhere
        snap = regular_file(candidate, snaps[0].relative_to(candidate).as_posix(), "snapshot")
    except Refused as exc:
        raise BadQuery(str(exc)) from None
    torrent = candidate / "torrents" / f"{snap.parent.name}.torrent"
    return snap, torrent if torrent.is_file() and not torrent.is_symlink() else None


def _private_tables_sql() -> list[str]:
    wanted = []
    for statement in split_sql(MIGRATION_1) + split_sql(MIGRATION_2) + \
            split_sql(MIGRATION_15):
        body = " ".join(line for line in statement.splitlines()
                        if not line.strip().startswith("--"))
        if any(f"TABLE {t} " in body or f"EXISTS {t} " in body or f"ON {t}(" in body
               for t in PRIVATE_TABLES):
            wanted.append(body)
    return wanted


def check_snapshot_torrent(snap: Path, torrent: Path | None) -> None:
    """The snapshot's bytes against its metadata torrent (when at hand); BadQuery if not."""
    if torrent is None:
        return
    check = Report("catalog")
    try:
        check_tree(snap.parent, load_expectations(torrent.read_bytes()), check)
    except (BadTorrent, OSError) as exc:
        check.add("catalog", str(torrent), "invalid", f"libtorrent cannot load it: {exc}")
    if check.damaged:
        raise BadQuery(f"the catalog snapshot {snap} is damaged: {check.damaged[0].line()}")


def unpack_snapshot(snap: Path, torrent: Path | None, tmp: Path, *,
                    max_size: int = MAX_SNAPSHOT) -> None:
    """Check a release's catalog snapshot while decompressing it to `tmp`: its torrent (when
    at hand), zstd's frame checksum within the caps of `verify.snapshot.inflate`, its schema
    against musicark's (before any query), then SQLite's own checks, each query within a
    time budget. BadQuery naming the first problem, with nothing left at `tmp`, when it is
    damaged or hostile (`repair --catalog-from` and `mirror import` both read snapshots
    through here)."""
    check_snapshot_torrent(snap, torrent)
    tmp.unlink(missing_ok=True)
    size = inflate(snap, tmp, max_size=max_size)
    try:
        check_snapshot_copy(tmp, str(snap), size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())


def check_snapshot_copy(path: Path, name: str, size: int) -> None:
    """The schema, then SQLite's integrity checks, of a decompressed snapshot; BadQuery."""
    check = Report("catalog")
    conn = untrusted(path)
    try:
        check_schema(conn, name)
        with bounded(conn, budget(size), name):
            check_database(conn, name, check, ledger=False)
    except sqlite3.DatabaseError as exc:
        check.add("catalog", name, "invalid", str(exc))
    finally:
        conn.close()
    if check.damaged:
        raise BadQuery(f"the catalog snapshot {name} is damaged: {check.damaged[0].line()}")


def restore_catalog(archive_path: Path, release: str | Path, *,
                    max_snapshot_size: int = MAX_SNAPSHOT) -> dict[str, Any]:
    archive_path = Path(archive_path).expanduser().absolute()
    snap, torrent_path = find_snapshot(archive_path, release)
    target = archive_path / CATALOG_NAME
    tmp = archive_path / (CATALOG_NAME + ".restore.tmp")
    unpack_snapshot(snap, torrent_path, tmp, max_size=max_snapshot_size)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        for statement in _private_tables_sql():
            conn.execute(re.sub(r"CREATE (TABLE|INDEX) (?!IF NOT EXISTS)",
                                r"CREATE \1 IF NOT EXISTS ", statement))
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    aside = archive_path / "store" / "damaged" / f"catalog-{stamp().replace(':', '')}"
    aside.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        old = archive_path / (CATALOG_NAME + suffix)
        if old.exists():
            os.replace(old, aside / old.name)
    os.replace(tmp, target)
    _fsync_dir(archive_path)
    with Archive.open(archive_path) as archive:  # applies migrations newer than the snapshot
        report = _lacks(archive, snap)
        archive.record_event("repair.catalog", str(snap), "ok", report)
    report["damaged_catalog_moved_to"] = str(aside)
    return report


def _lacks(archive: Archive, snap: Path) -> dict[str, Any]:
    conn = archive.conn
    known = {r[0] for r in conn.execute("SELECT name FROM releases")}
    rerecorded = []
    root = archive.path / "releases"
    for listing in sorted(root.glob("*/torrents.json")) if root.is_dir() else []:
        if listing.parent.name not in known:
            rerecorded.append(record_release(archive, listing.parent))
    ledger = {r[0] for r in conn.execute("SELECT sha256 FROM files WHERE sha256 IS NOT NULL")}
    missing, missing_bytes = 0, 0
    for path in (archive.store_path / "sha256").rglob("*"):
        if path.is_file() and path.name not in ledger:
            missing += 1
            missing_bytes += path.stat().st_size
    return {
        "snapshot": str(snap),
        "releases_recorded_again": rerecorded,
        "store_files_not_in_ledger": missing, "store_bytes_not_in_ledger": missing_bytes,
        "lacks": [
            "the event log (events), where files were found (file_paths) and ingest "
            "runs' skipped paths (ingest_runs): never in a snapshot",
            "source file locations and import options (sources.uri, sources.options)",
            "fingerprint index terms (re-run `musicark ingest` on the sources to rebuild)",
            f"{missing:,} store files ingested or derived after the snapshot "
            f"({missing_bytes:,} bytes): re-run ingest/derive/tag on them",
            "plans, imports, matches and withdrawals made after the snapshot"]}


def record_release(archive: Archive, release_dir: Path) -> dict[str, Any]:
    """Record a release the catalog lacks from its own torrents.json and files.jsonl."""
    conn = archive.conn
    try:  # every entry and line checked (release.schema); bad ones are listed, not used
        name, entries, bad = read_listing(release_dir / "torrents.json")
    except Refused as exc:
        return {"release": release_dir.name, "torrents": 0, "files": 0, "bad": [str(exc)]}
    own = [t for t in entries if t["release"] == name]
    files = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        release_id = conn.execute(
            "INSERT INTO releases(name, plan_id, release_date, options, summary, created_at) "
            "VALUES (?, NULL, ?, '{}', ?, ?)",
            (name, own[0].get("added") if own else None,
             json.dumps({"recorded_from": "torrents.json (catalog restored from a snapshot)"}),
             utc_now())).lastrowid
        for t in own:
            torrent_id = conn.execute(
                "INSERT INTO torrents(release_id, name, bucket, metadata, infohash_v1, "
                "infohash_v2, piece_length, size, torrent_size, num_files, popularity_min, "
                "popularity_max, listens_covered, path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (release_id, t["name"], t.get("bucket"), int(bool(t.get("metadata"))),
                 t["btih"], t.get("btmh"), t["piece_length"], t["data_size"],
                 t["torrent_size"], t["num_files"], t.get("popularity_min"),
                 t.get("popularity_max"), t.get("listens_covered"), t["torrent"])).lastrowid
            jsonl = release_dir / "shards" / t["name"] / "files.jsonl"
            if t["metadata"] or not jsonl.is_file():
                continue
            try:
                lines = list(read_jsonl(jsonl))
            except Refused as exc:
                bad.append(str(exc))
                continue
            for number, entry, reason in lines:
                if entry is None:
                    bad.append(f"{jsonl}: line {number}: {reason}")
                    continue
                row = conn.execute("SELECT rowid FROM files WHERE sha256 = ?",
                                   (entry["sha256"],)).fetchone()
                if row:
                    files += 1
                    conn.execute("INSERT OR IGNORE INTO release_files(torrent_id, path, "
                                 "file_rowid) VALUES (?, ?, ?)", (torrent_id, entry["path"],
                                                                  row[0]))
                for track in entry["tracks"]:
                    conn.execute("INSERT OR IGNORE INTO release_tracks(track_rowid, "
                                 "torrent_id) VALUES (?, ?)",
                                 (track_ref(track["track"]), torrent_id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return {"release": name, "torrents": len(own), "files": files, "bad": bad}
