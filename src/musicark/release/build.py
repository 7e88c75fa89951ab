"""`release create`: shards as BagIt bags, a hybrid torrent each, the catalog snapshot as
its own torrent, and `torrents.json`.

The release is built in a hidden sibling directory and renamed into place when complete,
then recorded in the catalog in one transaction: a killed build leaves nothing half made
in place, and the next run of the same plan keeps the shards it finished. Nothing depends
on the clock unless `on` (a date) is given, so the same archive state and options give
byte-identical files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from musicark.archive import Archive
from musicark.errors import BadQuery, FixityError
from musicark.ingest.store import Store
from musicark.release import layout
from musicark.release.bag import BagFiles, write_bag
from musicark.release.hashing import FileHashes, hash_files
from musicark.release.items import dumps
from musicark.release.metainfo import (
    Torrent,
    build_torrent,
    load_torrent,
    torrent_payload,
)
from musicark.release.options import ReleaseOptions, ReleaseReport, TorrentEntry
from musicark.release.paths import sanitize
from musicark.release.records import record, torrent_list
from musicark.release.shards import (
    Shard,
    group_shards,
    parse_buckets,
    parse_piece_length,
    slug,
)
from musicark.release.snapshot import write_snapshot


def create_release(archive: Archive, name: str, options: ReleaseOptions | None = None, *,
                   out: Path | None = None,
                   progress: Callable[[int, int], None] = lambda done, total: None
                   ) -> ReleaseReport:
    """Build release `name` from what no earlier release holds; see the module docstring.

    With `options.dask` (a scheduler address or a distributed Client) the payload hashing
    runs on that Dask cluster; everything else, and every byte written, stays here.
    """
    options = options or ReleaseOptions()
    if isinstance(options.dask, str):  # one connection for every shard, not one each
        from distributed import Client

        try:
            client = Client(options.dask, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise BadQuery(f"cannot reach the Dask scheduler at {options.dask}: {exc}") from exc
        with client:
            return create_release(archive, name, replace(options, dask=client), out=out,
                                  progress=progress)
    conn = archive.conn
    if sanitize(name) != name or "/" in name:
        raise BadQuery(f"release names must be portable file names: {name!r}")
    if conn.execute("SELECT 1 FROM releases WHERE name = ?", (name,)).fetchone():
        raise BadQuery(f"release {name!r} exists; releases are immutable, pick a new name")
    target = Path(out) if out else archive.path / "releases" / name
    if target.exists():
        raise BadQuery(f"{target} exists and is not a recorded release; remove it first")
    partial = target.with_name(f".{target.name}.partial")

    if options.plan_id is None and not options.all_matched:
        latest = conn.execute("SELECT max(id) FROM plans").fetchone()[0]
        options = replace(options, plan_id=latest)
    bounds = parse_buckets(options.buckets)
    parse_piece_length(options.piece_size, [1])  # bad options fail before any work
    report = ReleaseReport(name, str(target), [], {})
    with report.timed("select"):
        selection = layout.stage(archive, options.plan_id, bounds)
    try:
        if not selection.files:
            raise BadQuery(nothing_new(selection.skipped))
        report.selection = selection.as_dict()
        with report.timed("resume_check"):
            _resume_or_reset(partial, layout.digest(archive, dumps([options.as_dict(),
                                                                    options.verify])))
        entries = _build_all(archive, name, partial, options, report, progress,
                             total=selection.bytes + selection.patch_bytes)
        with report.timed("record"):
            listing = torrent_list(conn, name, entries, options.on)
            (partial / "torrents.json").write_text(listing, encoding="utf-8")
            (partial / PLAN_FILE).unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.rename(target)
            record(archive, name, options, entries, report)
    finally:
        layout.drop(archive)
        conn.execute("DROP TABLE IF EXISTS temp.release_contents")
    report.torrents = json.loads(listing)["torrents"][-len(entries):]
    return report


def _build_all(archive: Archive, name: str, partial: Path, options: ReleaseOptions,
               report: ReleaseReport, progress: Callable[[int, int], None], *, total: int
               ) -> list[TorrentEntry]:
    """Every shard, streamed from the staged layout (a kill leaves the partial directory:
    the next run of the same layout keeps the finished shards), then the snapshot."""
    conn = archive.conn
    store = Store(archive.store_path)
    prefix = slug(archive.settings.name)
    next_number: dict[str, int] = {
        bucket: count + 1 for bucket, count in conn.execute(
            "SELECT bucket, count(*) FROM torrents WHERE metadata = 0 GROUP BY bucket")}
    conn.execute("DROP TABLE IF EXISTS temp.release_contents")
    conn.execute("CREATE TEMP TABLE release_contents "
                 "(torrent TEXT, path TEXT, file_rowid INTEGER, tracks TEXT)")
    done = 0

    def advance(nbytes: int) -> None:
        nonlocal done
        done += nbytes
        progress(done, total)

    entries = []
    for shard in group_shards(layout.placed(archive), prefix=prefix,
                              max_bytes=options.max_shard_bytes, max_files=options.max_files,
                              next_number=next_number):
        entries.append(_build_shard(shard, partial, store, archive, name, options, report,
                                    advance))
        with report.timed("contents"):
            conn.executemany(
                "INSERT INTO release_contents VALUES (?, ?, ?, ?)",
                [(shard.name, "/".join(("data", *parts)), item.file_rowid,
                  ",".join(str(t.rowid) for t in item.tracks)) for parts, item in shard.entries])
    with report.timed("snapshot"):
        entries.append(_build_metadata(archive, name, prefix, partial, options))
    return entries


def nothing_new(skipped: dict[str, int]) -> str:
    """Why a release would be empty, in words."""
    if not skipped:
        return ("nothing new to release: every selected track is in an earlier release, "
                "withdrawn, or no track is selected")
    hints = {"planned, but no file in the archive": " (ingest and match files for them)",
             "not derived yet": " (run musicark derive)"}
    parts = []
    for why, count in sorted(skipped.items(), key=lambda x: -x[1]):
        hint = next((h for key, h in hints.items() if key in why), "")
        parts.append(f"{count:,} track{'s' if count != 1 else ''} left out: {why}{hint}")
    return "nothing new to release: " + "; ".join(parts)


PLAN_FILE = ".shards.sha256"


def _resume_or_reset(partial: Path, digest: str) -> None:
    """Keep a killed build's directory only if it was building exactly this layout."""
    marker = partial / PLAN_FILE
    if marker.is_file() and marker.read_text() == digest:
        return
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    marker.write_text(digest)


def shard_torrent(shard: Shard, root: Path, store: Store, *, group: str,
                  options: ReleaseOptions, advance: Callable[[int], None] = lambda n: None,
                  report: ReleaseReport | None = None
                  ) -> tuple[BagFiles, list[tuple[tuple[str, ...], FileHashes]], Torrent]:
    """Lay out one shard's bag at `root` and make its torrent, reading each byte once.

    The store files are the payload's bytes (hardlinks or copies of them): they are hashed
    while another thread lays out the bag, then the bag's few small tag files are hashed.
    """
    piece = parse_piece_length(options.piece_size, [i.size for _, i in shard.entries])
    stored: dict[tuple[str, ...], tuple[Path, str]] = {}
    sizes: dict[tuple[str, ...], int] = {}
    for parts, item in shard.entries:
        stored[("data", *parts)] = (store.path_for(item.sha256), item.sha256)
        sizes[("data", *parts)] = item.size
        if item.patch_sha256:
            rel = ("restore", f"{item.untagged_sha256}.zst")
            stored[rel] = (store.path_for(item.patch_sha256), item.patch_sha256)
            sizes[rel] = item.patch_size
    report = report or ReleaseReport("", "", [], {})
    with ThreadPoolExecutor(max_workers=1) as layout:
        bag_future = layout.submit(_timed, report, "bag", write_bag, root, shard, store,
                                   group=group, on=options.on)
        rels = list(stored)
        with report.timed("hash"):
            payload = dict(zip(rels, hash_files([stored[r][0] for r in rels], piece,
                                                with_sha256=options.verify, progress=advance,
                                                workers=options.workers, dask=options.dask,
                                                sizes=[sizes[r] for r in rels]),
                               strict=True))
        with report.timed("wait_bag"):
            bag = bag_future.result()
    with report.timed("hash"):
        tags = [(rel, path) for rel, path in bag.entries if rel not in payload]
        payload.update(zip([rel for rel, _ in tags], hash_files([p for _, p in tags], piece),
                           strict=True))
    hashed = []
    for rel, _ in bag.entries:
        hashes = payload[rel]
        if options.verify and rel in stored and hashes.sha256 != stored[rel][1]:
            error = FixityError(f"{stored[rel][0]}: SHA-256 {hashes.sha256} but the ledger "
                                f"says {stored[rel][1]}; it is now marked damaged: run "
                                "`musicark repair`")
            error.damaged = (stored[rel][1], "checksum", f"SHA-256 is {hashes.sha256}")
            raise error
        hashed.append((rel, hashes))
    with report.timed("torrent"):
        torrent = build_torrent(shard.name, hashed, piece, web_seeds=options.web_seeds,
                                on=options.on, comment=group, hybrid=options.hybrid)
    return bag, hashed, torrent


def _timed(report: ReleaseReport, phase: str, func, *args, **kwargs):
    with report.timed(phase):
        return func(*args, **kwargs)


def _build_shard(shard: Shard, partial: Path, store: Store, archive: Archive, release: str,
                 options: ReleaseOptions, report: ReleaseReport,
                 advance: Callable[[int], None]) -> TorrentEntry:
    path = partial / "torrents" / f"{shard.name}.torrent"
    root = partial / "shards" / shard.name
    if path.is_file():  # finished by a killed earlier run of the same plan
        torrent = load_torrent(path.read_bytes(), hybrid=options.hybrid)
        size, count = torrent_payload(torrent.data)
        report.resumed_shards += 1
        advance(sum(i.size + i.patch_size for _, i in shard.entries))
    else:
        with report.timed("sizes"):
            _check_sizes(archive, shard, store)
            shutil.rmtree(root, ignore_errors=True)
        try:
            bag, hashed, torrent = shard_torrent(
                shard, root, store, group=f"{archive.settings.name} / {release}",
                options=options, advance=advance, report=report)
        except FixityError as exc:
            if getattr(exc, "damaged", None):
                from musicark.verify.damage import mark_damaged

                mark_damaged(archive, *exc.damaged, by="release create --verify")
            raise
        report.linked += bag.linked
        report.copied += bag.copied
        report.bytes_hashed += sum(h.size for _, h in hashed)
        size, count = sum(h.size for _, h in hashed), len(hashed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(torrent.data)
        tmp.rename(path)  # last, atomically: its presence means the shard is complete
    pops = [i.popularity for _, i in shard.entries if i.popularity is not None]
    return TorrentEntry(
        shard.name, shard.bucket.name, False, torrent, size, count,
        min(pops) if pops else None, max(pops) if pops else None,
        sum(i.listens for _, i in shard.entries), f"torrents/{shard.name}.torrent")


def _check_sizes(archive: Archive, shard: Shard, store: Store) -> None:
    """A store file whose size is not the ledger's is damaged: it is recorded as such (so
    the next run leaves it out) and the release stops rather than pack it as good."""
    from musicark.verify.damage import mark_damaged, size_damage

    for _, item in shard.entries:
        for sha, size in ((item.sha256, item.size), (item.patch_sha256, item.patch_size)):
            if sha is None:
                continue
            damage = size_damage(store.path_for(sha), size)
            if damage:
                mark_damaged(archive, sha, *damage, by="release create")
                raise FixityError(
                    f"{store.path_for(sha)}: {damage[1]}; it is now marked damaged and "
                    "left out of releases: run `musicark repair`, or release again without it")


def _build_metadata(archive: Archive, release: str, prefix: str, partial: Path,
                    options: ReleaseOptions) -> TorrentEntry:
    name = f"{prefix}-{slug(release)}-metadata"
    root = partial / "metadata" / name
    shutil.rmtree(root, ignore_errors=True)  # always rebuilt: the snapshot is quick
    root.mkdir(parents=True)
    snapshot = root / "catalog.sqlite.zst"
    write_snapshot(archive.conn, snapshot)
    files = [(("catalog.sqlite.zst",), snapshot)]
    piece = parse_piece_length(options.piece_size, [snapshot.stat().st_size])
    hashed = [(rel, h) for (rel, _), h in zip(files, hash_files([p for _, p in files], piece),
                                                 strict=True)]
    torrent = build_torrent(name, hashed, piece, web_seeds=options.web_seeds, on=options.on,
                            comment=f"{archive.settings.name} / {release}: catalog snapshot",
                            hybrid=options.hybrid)
    path = partial / "torrents" / f"{name}.torrent"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(torrent.data)
    return TorrentEntry(name, None, True, torrent, sum(h.size for _, h in hashed), 1,
                        None, None, 0.0, f"torrents/{name}.torrent")
