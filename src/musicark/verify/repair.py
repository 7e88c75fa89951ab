"""`repair`: put good bytes back for every damaged or missing store file, then heal the
release copies that shared the damaged inode (payload hardlinks, restore patches).

Good bytes come first from the archive's own releases (a payload or restore patch that is
not the store file's inode: a hardlink of a damaged store file holds the same damaged bytes),
then from `--from` directories (by size, then SHA-256), or are rebuilt from the archive's own
derivations (`musicark.verify.rebuild`). A candidate is copied into store/tmp,
fsynced and hashed; only bytes with the expected SHA-256 replace anything. The damaged file is
first hardlinked into store/damaged/ (never deleted until `purge_damaged`), then the good one
is renamed over it: there is no moment without a file at the store path. Each file is
committed on its own, so a killed repair resumes with what is left.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicark.archive import Archive
from musicark.ingest.store import Store, _fsync_dir, sha256_file
from musicark.release.metainfo import magnet
from musicark.verify.damage import record_outcome, size_damage
from musicark.verify.rebuild import recipes
from musicark.verify.sources import Sources
from musicark.verify.store import stamp


@dataclass
class RepairReport:
    repaired: list[dict[str, Any]] = field(default_factory=list)
    unrepaired: list[dict[str, Any]] = field(default_factory=list)
    relinked: list[str] = field(default_factory=list)
    release_files: list[dict[str, Any]] = field(default_factory=list)
    release_unrepaired: list[dict[str, Any]] = field(default_factory=list)
    catalog: dict[str, Any] | None = None
    purged: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.unrepaired or self.release_unrepaired else 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.exit_code, "repaired": self.repaired,
                "unrepaired": self.unrepaired, "relinked": self.relinked,
                "release_files": self.release_files,
                "release_unrepaired": self.release_unrepaired, "catalog": self.catalog,
                "purged": self.purged, "seconds": round(self.seconds, 3)}


def damaged_files(archive: Archive) -> list[tuple[int, str, int | None]]:
    """Ledger files flagged by a check, plus any whose store file is missing or has the
    wrong size now (a stat per file: cheap, and repair needs no prior scrub to see those)."""
    conn = archive.conn
    store = Store(archive.store_path)
    flagged = {r[0] for r in conn.execute(
        "SELECT rowid FROM files WHERE sha256 IS NOT NULL AND "
        "(status = 'damaged' OR (fixity IS NOT NULL AND fixity != 'ok'))")}
    out = []
    for rowid, sha, size in conn.execute(  # streamed: nothing writes while it runs
            "SELECT rowid, sha256, size FROM files WHERE sha256 IS NOT NULL "
            "AND status != 'absent' ORDER BY rowid"):
        if rowid in flagged or size_damage(store.path_for(sha), size):
            out.append((rowid, sha, size))
    return out


def install(store: Store, sha256: str, tmp: Path) -> str | None:
    """Rename verified bytes at `tmp` to the store path; the file there before (damaged) is
    hardlinked into store/damaged/ first. Returns where the damaged bytes went."""
    final = store.path_for(sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    aside = None
    if os.path.lexists(final):
        damaged = store.root / "damaged"
        damaged.mkdir(exist_ok=True)
        aside = damaged / f"{sha256}.{stamp().replace(':', '')}"
        try:
            os.link(final, aside)
        except OSError:
            shutil.copyfile(final, aside)
        _fsync_dir(damaged)
    os.chmod(tmp, 0o444)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    return str(aside) if aside else None


def _try(store: Store, sha256: str, write: Callable[[Path], None]) -> Path | None:
    """Run `write` into a temporary store file; keep it only if it hashes to `sha256`."""
    store.tmp.mkdir(parents=True, exist_ok=True)
    tmp = store.tmp / f"{uuid.uuid4().hex}.repair.part"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)  # a hardlinked candidate is read-only (0444)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if sha256_file(tmp)[0] == sha256:
            return tmp
    except Exception:  # noqa: BLE001 - a recipe that fails is only a candidate less
        pass
    tmp.unlink(missing_ok=True)
    return None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def repair_store_file(archive: Archive, rowid: int, sha256: str, size: int | None,
                      sources: Sources) -> dict[str, Any]:
    """Repair one store file; returns what was done (`how` None: could not)."""
    store = Store(archive.store_path)
    final = store.path_for(sha256)
    if size_damage(final, size) is None and sha256_file(final)[0] == sha256:
        return {"sha256": sha256, "how": "already good", "moved_to": None}
    exclude = {i for i in [_inode(final)] if i is not None}
    tmp = None
    how = None
    for copy in _independent(release_copies(archive, rowid, sha256), exclude):
        tmp = _try(store, sha256, lambda out, copy=copy: _link_or_copy(copy, out))
        if tmp is not None:
            how = f"release copy {copy.relative_to(archive.path)}"
            break
    found = None if tmp is not None else sources.find(sha256, size, exclude)
    if found is not None:
        tmp, how = _try(store, sha256, lambda out: shutil.copyfile(found, out)), f"from {found}"
    if tmp is None:
        for what, write in recipes(archive.conn, store, rowid):
            tmp = _try(store, sha256, write)
            if tmp is not None:
                how = what
                break
    if tmp is None:
        return {"sha256": sha256, "how": None, "moved_to": None}
    return {"sha256": sha256, "how": how, "moved_to": install(store, sha256, tmp)}


def carriers(conn, rowid: int, sha256: str) -> list[dict[str, Any]]:
    """The published torrents that carry a file: release, shard, magnet and the path inside
    the torrent, so an operator can fetch it with any BitTorrent client."""
    rows = conn.execute("""
        SELECT r.name, t.name, t.infohash_v1, t.infohash_v2, rf.path
          FROM release_files rf JOIN torrents t ON t.id = rf.torrent_id
          JOIN releases r ON r.id = t.release_id WHERE rf.file_rowid = ?
        UNION
        SELECT r.name, t.name, t.infohash_v1, t.infohash_v2,
               'restore/' || i.sha256 || '.zst'
          FROM derivations d JOIN files i ON i.rowid = d.input_file
          JOIN release_files rf ON rf.file_rowid = d.output_file
          JOIN torrents t ON t.id = rf.torrent_id JOIN releases r ON r.id = t.release_id
         WHERE d.patch_file = ? ORDER BY 1, 2, 5""", (rowid, rowid)).fetchall()
    return [{"release": rel, "shard": shard, "magnet": magnet(btih, btmh),
             "path": f"{shard}/{path}"} for rel, shard, btih, btmh, path in rows]


def release_copies(archive: Archive, rowid: int, sha256: str) -> list[Path]:
    """Where the archive's own releases hold a file (payloads, restore patches): paths from
    the catalog, each proven inside the archive's releases/ folder before it is used."""
    root = archive.path / "releases"
    out = []
    for carrier in carriers(archive.conn, rowid, sha256):
        shard, inside = carrier["path"].split("/", 1)
        shard_dir = root / carrier["release"] / "shards" / shard
        path = shard_dir / inside
        if Path(os.path.normpath(path)) == path and path.is_relative_to(root) and \
                shard_dir.is_dir():
            out.append(path)
    return out


def _independent(paths: list[Path], exclude: set[int]) -> list[Path]:
    """Regular files whose inode is not in `exclude` (the damaged store file's)."""
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_ino not in exclude:
            out.append(path)
    return out


def _link_or_copy(src: Path, out: Path) -> None:
    """A hardlink where the release shares the store's filesystem (as `release create`
    makes it: no byte copy, the layout it had), else a copy."""
    try:
        os.link(src, out)
    except OSError:
        shutil.copyfile(src, out)


def relink(archive: Archive, rowid: int, sha256: str) -> list[str]:
    """Point every release copy of a repaired file at the new store file (they were
    hardlinks to the damaged inode); copies that are independent and good are left alone."""
    store = Store(archive.store_path)
    final = store.path_for(sha256)
    inode = _inode(final)
    done = []
    for path in release_copies(archive, rowid, sha256):
        if _inode(path) == inode:
            continue
        if path.exists() and sha256_file(path)[0] == sha256:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.relink")
        try:
            os.link(final, tmp)
        except OSError:
            shutil.copyfile(final, tmp)
        os.replace(tmp, path)
        done.append(str(path))
    return done


def repair_store(archive: Archive, sources: list[Path] | None = None, *,
                 report: RepairReport | None = None,
                 progress: Callable[[int, int], None] = lambda d, t: None) -> RepairReport:
    """Repair every damaged store file. Files left unrepaired get another pass while the
    previous pass repaired something: a file restored from a release copy may be what
    rebuilds another (an original from its tagged copy and restore patch)."""
    report = report or RepairReport()
    targets = damaged_files(archive)
    finder = Sources(list(sources or []), {s for _, _, s in targets if s is not None})
    pending, done = targets, 0
    with Store(archive.store_path).writing():
        while pending:
            retry = []
            for rowid, sha, size in pending:
                result = repair_store_file(archive, rowid, sha, size, finder)
                if result["how"] is None:
                    retry.append((rowid, sha, size))
                    continue
                _record(archive, report, rowid, sha, size, result)
                report.relinked.extend(relink(archive, rowid, sha))
                done += 1
                progress(done, len(targets))
            if len(retry) == len(pending):  # nothing more came back: these stay damaged
                for rowid, sha, size in retry:
                    _record(archive, report, rowid, sha, size, None)
                    done += 1
                    progress(done, len(targets))
                break
            pending = retry
    return report


def _record(archive: Archive, report: RepairReport, rowid: int, sha: str, size: int | None,
            result: dict[str, Any] | None) -> None:
    """Commit one file's outcome (a repair, or None: still damaged) on its own."""
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        if result is None:
            kind, detail = size_damage(Store(archive.store_path).path_for(sha), size) \
                or ("checksum", "bytes differ from their SHA-256")
            record_outcome(conn, sha, kind, detail, stamp(), by="repair")
            report.unrepaired.append({
                "sha256": sha, "file": rowid,
                "reason": "no good copy in the archive's own releases or the --from "
                          "sources, and no rebuild from the archive's own files",
                "torrents": carriers(conn, rowid, sha)})
        else:
            record_outcome(conn, sha, None, None, stamp(), by="repair", verified=True)
            conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                         "VALUES (?, 'repair', ?, 'ok', json_object('how', ?, "
                         "'moved_to', ?))", (stamp(), sha, result["how"],
                                             result["moved_to"]))
            report.repaired.append({**result, "file": rowid})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def purge_damaged(archive: Archive) -> int:
    """Delete what repair moved aside (store/damaged/); returns how many files."""
    damaged = archive.store_path / "damaged"
    files = [p for p in damaged.rglob("*") if p.is_file()] if damaged.is_dir() else []
    shutil.rmtree(damaged, ignore_errors=True)
    archive.record_event("repair.purge", str(damaged), "ok", {"files": len(files)})
    return len(files)


def repair(archive: Archive, sources: list[Path] | None = None, *, releases: bool = True,
           purge: bool = False, workers: int | None = None,
           progress: Callable[[int, int], None] = lambda d, t: None) -> RepairReport:
    """Repair the store, then (with `releases`) release files no store repair healed."""
    from musicark.verify.release_repair import repair_releases

    began = time.monotonic()
    report = repair_store(archive, sources, progress=progress)
    if releases:
        repair_releases(archive, list(sources or []), report, workers=workers)
    if purge:
        report.purged = purge_damaged(archive)
    report.seconds = time.monotonic() - began
    return report
