"""`mirror import`: check every fetched shard, load the release's catalog, register the
verified shards' files, and record what was found, shard by shard (rerunnable: a shard
already imported whose files have not changed since is not read again)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from musicark.archive import Archive, utc_now
from musicark.errors import BadQuery
from musicark.mirror.check import DAMAGED, INCOMPLETE, VERIFIED, ShardCheck, check_shard
from musicark.mirror.locate import ReleaseDir, ShardDir, find_shards
from musicark.mirror.merge import merge_catalog
from musicark.mirror.register import register_shard
from musicark.mirror.snapshot import open_snapshot
from musicark.verify.snapshot import MAX_SNAPSHOT, bounded, budget


@dataclass
class ShardOutcome:
    name: str
    release: str
    path: str
    state: str  # verified, incomplete, damaged, or unchanged (imported before, not re-read)
    torrent: str | None = None  # the .torrent the shard was checked against
    files_total: int = 0
    files_good: int = 0
    bytes_total: int = 0
    bytes_good: int = 0
    percent: float = 0.0
    registered: int = 0
    new_files: int = 0
    linked: int = 0
    copied: int = 0
    originals: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class MirrorReport:
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: list[ShardOutcome] = field(default_factory=list)
    bytes_checked: int = 0

    def count(self, state: str) -> int:
        return sum(1 for s in self.shards if s.state == state)

    @property
    def exit_code(self) -> int:
        bad = any(info.get("problems") for info in self.releases.values())
        return 1 if bad or any(s.state in (DAMAGED, INCOMPLETE) for s in self.shards) else 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.exit_code == 0, "releases": self.releases,
                "counts": {s: self.count(s) for s in (VERIFIED, "unchanged", INCOMPLETE,
                                                      DAMAGED)},
                "bytes_checked": self.bytes_checked,
                "shards": [asdict(s) for s in self.shards]}


def _stats(root: Path) -> dict[str, os.stat_result]:
    """Every file's stat before the check reads it: registering trusts the check's hashes
    only for files unchanged since."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = path.lstat()  # a link is not followed
    return out


def _stamp(stats: dict[str, os.stat_result]) -> str:
    return json.dumps(sorted((rel, s.st_size, s.st_mtime_ns, s.st_ino)
                             for rel, s in stats.items()))


def _attach(archive: Archive, path: Path) -> None:
    """The snapshot copy as `snap` (its schema checked when it was made), with nothing in
    any schema trusted to run code while it is attached."""
    archive.conn.execute("PRAGMA trusted_schema = OFF")
    archive.conn.execute("ATTACH DATABASE ? AS snap", (str(path),))


def _load_catalog(archive: Archive, release: ReleaseDir, report: MirrorReport,
                  max_snapshot_size: int) -> bool:
    """Merge the release's snapshot once per content; True when the snapshot is at hand."""
    conn = archive.conn
    known = conn.execute("SELECT catalog, snapshot_sha256 FROM mirror_releases WHERE name = ?",
                         (release.name,)).fetchone()
    found = release.snapshot()
    info: dict[str, Any] = {"path": str(release.path) if release.path else None}
    report.releases[release.name] = info
    listing = json.dumps(release.listing, sort_keys=True) if release.listing else None
    if found is None:
        info["catalog"] = "snapshot" if known and known[0] == "snapshot" else "minimal"
        _upsert_release(archive, release, info["catalog"], known[1] if known else None,
                        listing)
        return bool(known and known[0] == "snapshot")
    copy, digest = open_snapshot(archive.path, release.name, *found,
                                 max_size=max_snapshot_size)
    info["catalog"] = "snapshot"
    _attach(archive, copy)
    if known and known[1] == digest:
        info["merged"] = {}
        _upsert_release(archive, release, "snapshot", digest, listing)
        return True
    conn.execute("BEGIN IMMEDIATE")
    try:
        with bounded(conn, budget(copy.stat().st_size), f"merging {found[0]}"):
            info["merged"] = merge_catalog(conn)
        _upsert_release(archive, release, "snapshot", digest, listing, transaction=False)
        archive.record_event("mirror.catalog", release.name, "ok",
                             {"snapshot": str(found[0]), "sha256": digest, **info["merged"]})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _upsert_release(archive: Archive, release: ReleaseDir, catalog: str, digest: str | None,
                    listing: str | None, *, transaction: bool = True) -> None:
    sql = ("INSERT INTO mirror_releases(name, path, catalog, snapshot_sha256, listing, "
           "imported_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
           "path = CASE excluded.path WHEN '' THEN path ELSE excluded.path END, "
           "catalog = excluded.catalog, "
           "snapshot_sha256 = excluded.snapshot_sha256, "
           "listing = coalesce(excluded.listing, listing), imported_at = excluded.imported_at")
    args = (release.name, str(release.path or ""), catalog, digest, listing, utc_now())
    if transaction:
        archive.conn.execute("BEGIN IMMEDIATE")
        archive.conn.execute(sql, args)
        archive.conn.execute("COMMIT")
    else:
        archive.conn.execute(sql, args)


def _record_shard(archive: Archive, check: ShardCheck, registered: int, stamp: str | None
                  ) -> None:
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT OR REPLACE INTO mirror_shards(name, release, path, state, files_total, "
            "files_good, bytes_total, bytes_good, registered, problems, stamp, checked_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (check.shard.name, check.shard.release.name, str(check.shard.path), check.state,
             check.files_total, check.files_good, check.bytes_total, check.bytes_good,
             registered, json.dumps(check.problems[:100]), stamp, utc_now()))
        if check.state != VERIFIED:
            archive.record_event("mirror.import", check.shard.name, check.state,
                                 {"release": check.shard.release.name,
                                  "path": str(check.shard.path),
                                  "files_good": check.files_good,
                                  "files_total": check.files_total,
                                  "problems": check.problems[:10]})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _unchanged(archive: Archive, shard: ShardDir, stamp: str) -> bool:
    row = archive.conn.execute("SELECT state, stamp, path FROM mirror_shards WHERE name = ?",
                               (shard.name,)).fetchone()
    return row is not None and row[0] == VERIFIED and row[1] == stamp \
        and row[2] == str(shard.path)


def import_mirror(archive: Archive, dirs: list[Path], *, copy: bool = False,
                  restore_originals: bool = False, recheck: bool = False,
                  workers: int | None = None, max_snapshot_size: int = MAX_SNAPSHOT,
                  progress: Callable[[str, int, int], None] = lambda phase, done, total: None
                  ) -> MirrorReport:
    """Import every shard found under `dirs` (see the package docstring)."""
    if not dirs:
        raise BadQuery("give at least one directory: a release, its shards/ folder or a shard")
    shards, releases = find_shards(dirs)
    report = MirrorReport()
    snap: dict[str, bool] = {}
    try:
        for release in releases:
            if release.name in snap:
                continue
            if "snap" in {r[1] for r in archive.conn.execute("PRAGMA database_list")}:
                archive.conn.execute("DETACH DATABASE snap")
            snap[release.name] = _load_catalog(archive, release, report, max_snapshot_size)
            if "snap" in {r[1] for r in archive.conn.execute("PRAGMA database_list")}:
                archive.conn.execute("DETACH DATABASE snap")
        for release in releases:  # bad torrents.json entries, refused files: one line each
            report.releases.setdefault(release.name, {})["problems"] = release.problems
        total = sum(sum(s.st_size for s in _stats(sh.path).values()) for sh in shards
                    if sh.refused is None)
        done = 0
        for shard in shards:
            if shard.refused is not None:
                check = check_shard(shard)
                report.shards.append(ShardOutcome(shard.name, shard.release.name,
                                                  str(shard.path), check.state,
                                                  problems=check.problems))
                continue
            stats = _stats(shard.path)
            stamp = _stamp(stats)
            size = sum(s.st_size for s in stats.values())
            if not recheck and _unchanged(archive, shard, stamp):
                report.shards.append(ShardOutcome(shard.name, shard.release.name,
                                                  str(shard.path), "unchanged"))
                done += size
                progress("unchanged", done, total)
                continue
            base = done

            def step(nbytes: int, name: str = shard.name) -> None:
                nonlocal done
                done += nbytes
                progress(name, done, total)

            check = check_shard(shard, workers=workers, progress=step)
            report.bytes_checked += check.report.bytes
            done = base + size
            outcome = ShardOutcome(shard.name, shard.release.name, str(shard.path), check.state,
                                   str(shard.torrent) if shard.torrent else None,
                                   check.files_total, check.files_good, check.bytes_total,
                                   check.bytes_good, round(check.percent, 1),
                                   problems=check.problems[:20])
            registered = 0
            if check.state == VERIFIED:
                has_snap = snap.get(shard.release.name, False)
                copy_path = _snapshot_path(archive, shard.release.name)
                if has_snap:
                    _attach(archive, copy_path)
                try:
                    got = register_shard(archive, check, stats, copy=copy,
                                         restore_originals=restore_originals, snap=has_snap,
                                         minimal=not has_snap,
                                         seconds=budget(copy_path.stat().st_size)
                                         if has_snap else None)
                finally:
                    if has_snap:
                        archive.conn.execute("DETACH DATABASE snap")
                registered = got.files
                outcome.registered, outcome.new_files = got.files, got.new_files
                outcome.linked, outcome.copied = got.linked, got.copied
                outcome.originals = got.originals
                outcome.problems.extend(got.problems)
                stamp = _stamp(_stats(shard.path))  # linking made files read-only
            _record_shard(archive, check, registered, stamp if check.state == VERIFIED
                          else None)
            report.shards.append(outcome)
            progress(shard.name, done, total)
    finally:
        if "snap" in {r[1] for r in archive.conn.execute("PRAGMA database_list")}:
            archive.conn.execute("DETACH DATABASE snap")
    return report


def _snapshot_path(archive: Archive, release: str) -> Path:
    from musicark.mirror.snapshot import snapshot_copy

    return snapshot_copy(archive.path, release)
