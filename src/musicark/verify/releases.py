"""`verify releases`: every shard's bag and torrent, each metadata torrent's files, the
torrent files against the catalog's infohashes, and torrents.json against both.

Works from the catalog (the archive's own releases) or from a release directory alone
(`verify_release_dir`, for a mirror that fetched one): then torrents.json is the reference.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from musicark.archive import Archive
from musicark.release.metainfo import magnet
from musicark.release.schema import read_listing
from musicark.runner import fan_out
from musicark.trust import Refused, inside, read_regular
from musicark.verify.report import CHECKSUM, EXTRA, INVALID, MISMATCH, MISSING, SIZE, Report
from musicark.verify.shard import dedupe, digest_batch, validate_bag
from musicark.verify.torrent import (
    MAX_TORRENT,
    BadTorrent,
    TorrentFiles,
    compare,
    load_expectations,
)


@dataclass(frozen=True)
class TorrentRecord:
    """What the catalog (or torrents.json) says a torrent of a release is."""

    name: str
    metadata: bool
    path: str  # of the .torrent, relative to the release directory
    btih: str | None
    btmh: str | None
    torrent_size: int | None
    data_size: int | None
    num_files: int | None

    def root(self, release_dir: Path) -> Path:
        return release_dir / ("metadata" if self.metadata else "shards") / self.name


def catalog_records(archive: Archive, release: str) -> list[TorrentRecord]:
    return [TorrentRecord(*row[:1], bool(row[1]), *row[2:]) for row in archive.conn.execute(
        "SELECT t.name, t.metadata, t.path, t.infohash_v1, t.infohash_v2, t.torrent_size, "
        "t.size, t.num_files FROM torrents t JOIN releases r ON r.id = t.release_id "
        "WHERE r.name = ? ORDER BY t.id", (release,))]


def catalog_listing(archive: Archive, release: str) -> dict[str, dict]:
    """Every entry the release's torrents.json must hold, rebuilt from the catalog: the
    torrents of this release and of every earlier one, as `release create` wrote them."""
    rows = archive.conn.execute("""
        SELECT r.name, r.release_date, t.name, t.bucket, t.metadata, t.infohash_v1,
               t.infohash_v2, t.path, t.torrent_size, t.size, t.num_files, t.piece_length,
               t.popularity_min, t.popularity_max, t.listens_covered
          FROM torrents t JOIN releases r ON r.id = t.release_id
         WHERE r.id <= (SELECT id FROM releases WHERE name = ?) ORDER BY t.id""", (release,))
    out = {}
    for (rel, added, name, bucket, metadata, btih, btmh, path, tsize, size, nfiles, piece,
         pmin, pmax, listens) in rows:
        out[name] = {"name": name, "release": rel, "shard": None if metadata else name,
                     "bucket": bucket, "metadata": bool(metadata), "btih": btih, "btmh": btmh,
                     "magnet": magnet(btih, btmh),
                     "torrent": path if rel == release else f"../{rel}/{path}",
                     "torrent_size": tsize, "data_size": size, "num_files": nfiles,
                     "piece_length": piece, "popularity_min": pmin, "popularity_max": pmax,
                     "listens_covered": listens, "added": added, "seeders": None}
    return out


def check_listing_file(path: Path, release: str, expected: dict[str, dict],
                       report: Report) -> None:
    """torrents.json against the catalog, entry by entry and field by field."""
    check = Report("release")
    name, entries = listing_records(path.parent, check, path)
    for problem in check.problems:
        report.add("release", str(path), problem.kind, problem.detail)
    if check.problems:
        return
    if name != release:
        report.add("release", str(path), MISMATCH,
                   f"names release {name!r}, this is release {release!r}")
    found: dict[str, dict] = {}
    for entry in entries:
        found[entry["name"]] = entry
    for missing in sorted(set(expected) - set(found)):
        report.add("release", str(path), MISMATCH, f"does not list torrent {missing!r}")
    for extra in sorted(set(found) - set(expected)):
        report.add("release", str(path), MISMATCH,
                   f"lists torrent {extra!r}, which the catalog does not know")
    for key_name in sorted(set(found) & set(expected)):
        got, want = found[key_name], expected[key_name]
        for key in sorted(set(got) | set(want)):
            if got.get(key) != want.get(key):
                report.add("release", str(path), MISMATCH,
                           f"{key_name}: {key} is {got.get(key)!r}, the catalog says "
                           f"{want.get(key)!r}")


def load_torrent_file(release_dir: Path, record: TorrentRecord, report: Report
                      ) -> TorrentFiles | None:
    """The torrent's expectations, or None (reported) when it is missing, unreadable or not
    the torrent the catalog recorded."""
    try:
        path = inside(release_dir, record.path, "torrent")
    except Refused as exc:
        report.add("release", str(release_dir / "torrents.json"), INVALID, str(exc))
        return None
    try:
        data = read_regular(path, "torrent", limit=MAX_TORRENT)
    except Refused as exc:
        missing = not os.path.lexists(path)
        report.add("release", str(path), MISSING if missing else INVALID,
                   "torrent file is missing" if missing else str(exc))
        return None
    try:
        torrent = load_expectations(data)
    except BadTorrent as exc:
        report.add("release", str(path), INVALID, f"libtorrent cannot load it: {exc}")
        return None
    if record.btih and torrent.btih != record.btih:
        report.add("release", str(path), CHECKSUM,
                   f"infohash {torrent.btih}, the catalog says {record.btih}")
        return None
    if record.btmh and torrent.btmh != record.btmh:
        report.add("release", str(path), CHECKSUM,
                   f"v2 infohash {torrent.btmh}, the catalog says {record.btmh}")
        return None
    if record.torrent_size is not None and len(data) != record.torrent_size:
        report.add("release", str(path), SIZE,
                   f"{len(data):,} bytes, the catalog says {record.torrent_size:,}")
    return torrent


def check_tree(root: Path, torrent: TorrentFiles, report: Report, *,
               workers: int | None = None, dask: str | object | None = None,
               progress: Callable[[int], None] = lambda n: None) -> None:
    """Files under `root` against their torrent only (a metadata torrent has no bag)."""
    present: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):  # links are not followed, not read
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                report.add("release", str(path), INVALID,
                           "not a regular file (a symbolic link, FIFO or device): not read")
            else:
                present.add(rel)
    for rel in sorted(set(torrent.files) - present):
        report.add("release", str(root / rel), MISSING, "in the torrent, not on disk")
    for rel in sorted(present - set(torrent.files)):
        report.add("release", str(root / rel), EXTRA, "on disk, not in the torrent")
    jobs = [(rel, (), torrent.piece_length) for rel in sorted(present & set(torrent.files))]
    for results in fan_out(digest_batch, [(str(root), jobs)], workers=1 if dask is None else None,
                           dask=dask):
        for rel, digests, error in results:
            report.files += 1
            if digests is None:
                report.add("release", str(root / rel), "unreadable", f"cannot read: {error}")
                continue
            report.bytes += digests.size
            progress(digests.size)
            for kind, detail in compare(torrent.files[rel], digests, torrent.piece_length):
                report.add("release", str(root / rel), kind, detail)


def listing_records(release_dir: Path, report: Report, path: Path | None = None
                    ) -> tuple[str | None, list[dict]]:
    """torrents.json of a release directory (or at `path`): (release name, its entries)."""
    path = path or release_dir / "torrents.json"
    if not os.path.lexists(path):
        report.add("release", str(path), MISSING, "torrents.json is missing")
        return None, []
    try:
        name, entries, bad = read_listing(path)
    except Refused as exc:
        report.add("release", str(path), INVALID, f"not a torrent list: {exc}")
        return None, []
    for line in bad:  # each bad entry: its number and reason
        report.add("release", str(path), INVALID, line.removeprefix(f"{path}: "))
    return name, entries


def _record_from_entry(entry: dict) -> TorrentRecord:
    return TorrentRecord(entry["name"], bool(entry.get("metadata")), entry["torrent"],
                         entry.get("btih"), entry.get("btmh"), entry.get("torrent_size"),
                         entry.get("data_size"), entry.get("num_files"))


def verify_release_dir(release_dir: Path, records: list[TorrentRecord] | None = None, *,
                       listing: dict[str, dict] | None = None,
                       workers: int | None = None, dask: str | object | None = None,
                       progress: Callable[[int], None] = lambda n: None) -> Report:
    """Check one release directory; `records` and `listing` (what torrents.json must hold)
    from the catalog, else torrents.json is the reference and only checked against the
    torrent files."""
    began = time.monotonic()
    report = Report("release")
    release_dir = Path(release_dir)
    name, entries = listing_records(release_dir, Report("release") if listing is not None
                                    else report)
    own = [e for e in entries if e["release"] == name]
    if records is None:
        records = [_record_from_entry(e) for e in own]
    listed = {e.get("name"): e for e in own}
    for record in records:
        torrent = load_torrent_file(release_dir, record, report)
        if listing is None:
            _check_listing(release_dir, record, listed.get(record.name), torrent, report,
                           bool(entries) or name is not None)
        root = record.root(release_dir)
        if record.metadata:
            if torrent is not None:
                check_tree(root, torrent, report, workers=workers, dask=dask, progress=progress)
        else:
            validate_bag(root, torrent, workers=workers, dask=dask, progress=progress,
                         report=report)
    if listing is not None:
        check_listing_file(release_dir / "torrents.json", release_dir.name, listing, report)
    else:
        for extra in sorted(set(listed) - {r.name for r in records}):
            report.add("release", str(release_dir / "torrents.json"), MISMATCH,
                       f"lists torrent {extra!r}, which its own torrent files do not match")
    report.seconds = time.monotonic() - began
    dedupe(report)
    return report


def _check_listing(release_dir: Path, record: TorrentRecord, entry: dict | None,
                   torrent: TorrentFiles | None, report: Report, have_listing: bool) -> None:
    path = str(release_dir / "torrents.json")
    if entry is None:
        if have_listing:
            report.add("release", path, MISMATCH, f"does not list torrent {record.name!r}")
        return
    wants = {"btih": record.btih, "btmh": record.btmh, "torrent": record.path,
             "torrent_size": record.torrent_size}
    if torrent is not None:
        size, count = torrent.payload
        wants.update({"data_size": size, "num_files": count, "btih": torrent.btih,
                      "btmh": torrent.btmh})
    for key, want in wants.items():
        if want is not None and entry.get(key) != want:
            report.add("release", path, MISMATCH,
                       f"{record.name}: {key} is {entry.get(key)!r}, expected {want!r}")


def verify_releases(archive: Archive, names: list[str] | None = None, *,
                    workers: int | None = None, dask: str | object | None = None,
                    progress: Callable[[int], None] = lambda n: None) -> Report:
    """Every release the catalog records (or those named), at ARCHIVE/releases/<name>."""
    report = Report("releases")
    known = [r[0] for r in archive.conn.execute("SELECT name FROM releases ORDER BY id")]
    for name in names or known:
        release_dir = archive.path / "releases" / name
        if name not in known:
            report.add("release", str(release_dir), MISSING, "no such release in the catalog")
            continue
        if not release_dir.is_dir():
            report.add("release", str(release_dir), MISSING, "release directory is missing")
            continue
        report.merge(verify_release_dir(release_dir, catalog_records(archive, name),
                                        listing=catalog_listing(archive, name),
                                        workers=workers, dask=dask, progress=progress))
    report.notes["releases"] = len(names or known)
    _record_events(archive, report)
    return report


def _record_events(archive: Archive, report: Report) -> None:
    """A "fixity" event per damaged release file (PREMIS-style) and one for the run."""
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        for problem in report.damaged:
            archive.record_event("fixity", problem.path, problem.kind,
                                 {"by": "verify releases", "detail": problem.detail})
        archive.record_event("fixity.run", "releases", "damage" if report.damaged else "ok",
                             {"files": report.files, "bytes": report.bytes,
                              "damage": len(report.damaged)})
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def release_bytes(archive: Archive) -> int:
    """Bytes a releases check reads (for progress totals)."""
    row = archive.conn.execute("SELECT sum(size) FROM torrents").fetchone()
    return int(row[0] or 0)
