"""Repair of release files no store repair healed: torrent files, tag files (manifests,
files.jsonl, bag-info.txt, ...), torrents.json, catalog snapshots, payload copies.

Each damaged path is looked for at the same place in the `--from` sources (another archive's
releases/, a release directory, a single shard or metadata directory; payload files also in
the store). A candidate must pass what the path is checked against: a torrent file the
catalog's infohash and size; any file of a shard or metadata directory its torrent's v1
pieces and v2 root; torrents.json the catalog's records. Damaged bytes are kept under
store/damaged/releases/.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from musicark.archive import Archive
from musicark.ingest.store import Store, _fsync_dir
from musicark.release.metainfo import magnet
from musicark.verify.readpass import read_digests
from musicark.verify.releases import (
    TorrentRecord,
    catalog_listing,
    catalog_records,
    check_listing_file,
    verify_releases,
)
from musicark.verify.report import EXTRA, Report
from musicark.verify.store import stamp
from musicark.verify.torrent import BadTorrent, compare, load_expectations


def _oracle(archive: Archive, release: str, rel: str, records: dict[str, TorrentRecord]
            ) -> Callable[[Path], bool] | None:
    """A test a candidate for release file `rel` (relative to the release directory) must
    pass, or None when nothing can vouch for such a file."""
    release_dir = archive.path / "releases" / release
    parts = rel.split("/")
    if parts[0] == "torrents" and rel.endswith(".torrent"):
        record = next((r for r in records.values() if r.path == rel), None)
        if record is None:
            return None

        def torrent_ok(path: Path) -> bool:
            data = path.read_bytes()
            try:
                got = load_expectations(data)
            except BadTorrent:
                return False
            return got.btih == record.btih and (record.torrent_size is None
                                                or len(data) == record.torrent_size)
        return torrent_ok
    if rel == "torrents.json":
        expected = catalog_listing(archive, release)

        def listing_ok(path: Path) -> bool:
            check = Report("release")
            check_listing_file(path, release, expected, check)
            return not check.damaged
        return listing_ok
    if len(parts) >= 3 and parts[0] in ("shards", "metadata") and parts[1] in records:
        record = records[parts[1]]
        try:
            torrent = load_expectations((release_dir / record.path).read_bytes())
        except (OSError, BadTorrent):
            return None
        if torrent.btih != record.btih:
            return None
        expected = torrent.files.get("/".join(parts[2:]))
        if expected is None:
            return None
        return lambda path: not compare(expected, read_digests(path, (), torrent.piece_length),
                                        torrent.piece_length)
    return None


def _candidates(archive: Archive, sources: list[Path], release: str, rel: str
                ) -> Iterator[Path]:
    parts = rel.split("/")
    if len(parts) >= 3 and parts[0] == "shards":
        for (sha,) in archive.conn.execute(
                "SELECT f.sha256 FROM release_files rf JOIN torrents t ON t.id = rf.torrent_id "
                "JOIN files f ON f.rowid = rf.file_rowid WHERE t.name = ? AND rf.path = ?",
                (parts[1], "/".join(parts[2:]))):
            yield Store(archive.store_path).path_for(sha)
    for src in sources:
        src = Path(src).expanduser().absolute()
        yield src / "releases" / release / rel
        yield src / rel
        if len(parts) >= 3 and parts[0] in ("shards", "metadata") and src.name == parts[1]:
            yield src.joinpath(*parts[2:])
        if len(parts) == 2 and parts[0] == "torrents":
            yield src / parts[1]


def _install(archive: Archive, target: Path, candidate: Path, check: Callable[[Path], bool],
             release: str, rel: str) -> bool:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.repair")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(candidate, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if not check(tmp):
            return False
        if os.path.lexists(target):
            aside = archive.store_path / "damaged" / "releases" / release / \
                f"{rel}.{stamp().replace(':', '')}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(target, aside)
            except OSError:
                shutil.copyfile(target, aside)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def repair_releases(archive: Archive, sources: list[Path], report, *,
                    workers: int | None = None) -> None:
    found = verify_releases(archive, workers=workers)
    releases_root = archive.path / "releases"
    paths: dict[str, str] = {}
    extras: set[Path] = set()
    for problem in found.damaged:
        path = Path(problem.path)
        if releases_root not in path.parents:
            continue
        if problem.kind == EXTRA:
            extras.add(path)
            continue
        paths.setdefault(str(path), problem.line())
    # torrent files first: the other files are checked against them
    for text in sorted(paths, key=lambda p: (not p.endswith(".torrent"), p)):
        path = Path(text)
        release, rel = path.relative_to(releases_root).parts[0], \
            "/".join(path.relative_to(releases_root).parts[1:])
        records = {r.name: r for r in catalog_records(archive, release)}
        check = _oracle(archive, release, rel, records)
        done = False
        try:  # damage reported here may have been elsewhere (a manifest): keep good files
            if check is not None and path.is_file() and check(path):
                continue
        except OSError:
            pass
        if check is not None:
            for candidate in _candidates(archive, sources, release, rel):
                try:
                    if candidate.is_file() and candidate.resolve() != path.resolve() and \
                            _install(archive, path, candidate, check, release, rel):
                        report.release_files.append({"path": text, "from": str(candidate)})
                        archive.record_event("repair", text, "ok", {"from": str(candidate)})
                        done = True
                        break
                except OSError:
                    continue
        if not done:
            parts = rel.split("/")
            record = records.get(parts[1]) if len(parts) > 2 else None
            report.release_unrepaired.append({
                "path": text, "problem": paths[text],
                "reason": "no candidate in the --from sources passed the check"
                if check else "nothing can vouch for this file's bytes",
                "torrent": None if record is None else {
                    "release": release, "shard": record.name,
                    "magnet": magnet(record.btih, record.btmh),
                    "path": f"{record.name}/{'/'.join(parts[2:])}"}})
    for path in sorted(extras - {Path(p) for p in paths}):
        _move_extra(archive, releases_root, path, report)


def _move_extra(archive: Archive, releases_root: Path, path: Path, report) -> None:
    """A file in a shard that its torrent does not list (nor any manifest) is moved out of
    the bag into store/damaged/releases/, not deleted: the bag is whole again and nothing
    is lost. Files the torrent lists stay (a damaged manifest made them look extra)."""
    parts = path.relative_to(releases_root).parts
    release, rel = parts[0], "/".join(parts[1:])
    records = {r.name: r for r in catalog_records(archive, release)}
    if len(parts) < 4 or parts[1] not in ("shards", "metadata") or parts[2] not in records:
        return
    record = records[parts[2]]
    try:
        torrent = load_expectations((releases_root / release / record.path).read_bytes())
    except (OSError, BadTorrent):
        return
    if torrent.btih != record.btih or "/".join(parts[3:]) in torrent.files \
            or not path.is_file():
        return
    aside = archive.store_path / "damaged" / "releases" / release / \
        f"{rel}.{stamp().replace(':', '')}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, aside)
    report.release_files.append({"path": str(path), "moved_to": str(aside),
                                 "from": "not part of the shard: moved aside"})
    archive.record_event("repair", str(path), "moved-aside", {"to": str(aside)})
