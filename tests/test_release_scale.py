"""Release at scale (issue #16): hashing on a Dask cluster gives the very same release as a
local run; the selection queries stay linear (no table scanned once per row); phases are
timed in the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from archive_fixture import planned_archive
from musicark.archive import Archive
from musicark.release import ReleaseOptions, create_release
from musicark.release import items as release_items

OPTIONS = dict(buckets="50,20,0", max_files=3, all_matched=True)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return planned_archive(tmp_path_factory.mktemp("release-scale-base"))


def _copy(base: Path, dest: Path) -> Archive:
    shutil.copytree(base, dest)
    return Archive.open(dest)


def _release_files(release: Path) -> dict[str, bytes]:
    return {str(p.relative_to(release)): p.read_bytes()
            for p in sorted((release / "torrents").iterdir())} | {
        "torrents.json": (release / "torrents.json").read_bytes()}


def test_dask_hashing_gives_the_same_torrents_as_a_local_run(base: Path, tmp_path: Path
                                                             ) -> None:
    from distributed import LocalCluster

    local = _copy(base, tmp_path / "local")
    mine = create_release(local, "r1", ReleaseOptions(**OPTIONS, workers=1))
    on_dask = _copy(base, tmp_path / "dask")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        # The address, as the CLI gives it: one connection for the whole release.
        theirs = create_release(on_dask, "r1", ReleaseOptions(**OPTIONS,
                                                              dask=cluster.scheduler_address))
    assert len(mine.torrents) >= 3  # several shards, so several batches of work
    assert [(t["btih"], t["btmh"]) for t in mine.torrents if not t["metadata"]] == [
        (t["btih"], t["btmh"]) for t in theirs.torrents if not t["metadata"]]
    ours, dasks = _release_files(Path(mine.path)), _release_files(Path(theirs.path))
    metadata = [k for k in ours if k.endswith("-metadata.torrent")]
    for key in metadata:  # the snapshot holds the event log's times; the rest is identical
        ours.pop(key), dasks.pop(key)
    listing = [json.loads(x.pop("torrents.json")) for x in (ours, dasks)]
    assert ours == dasks
    assert [t for t in listing[0]["torrents"] if not t["metadata"]] == [
        t for t in listing[1]["torrents"] if not t["metadata"]]
    assert theirs.phases["hash"] > 0 and "select" in theirs.phases


def test_dask_hashing_spreads_batches_in_input_order(tmp_path: Path) -> None:
    """Batches come back from the cluster in any order; the hashes are put back in order."""
    from distributed import Client, LocalCluster

    from musicark.release import hashing

    files = []
    for i in range(40):
        path = tmp_path / f"f{i:02d}"
        path.write_bytes(bytes([i]) * (1000 + 7919 * i))
        files.append(path)
    local = list(hashing.hash_files(files, 1 << 15, with_sha256=True, workers=1))
    old = hashing.BATCH_FILES
    hashing.BATCH_FILES = 3  # 14 batches over 2 workers
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            remote = list(hashing.hash_files(files, 1 << 15, with_sha256=True, dask=client))
    finally:
        hashing.BATCH_FILES = old
    assert remote == local


def test_an_unreachable_scheduler_is_one_clear_error(base: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicark.cli import app

    _copy(base, tmp_path / "a").close()
    result = CliRunner().invoke(app, ["release", "create", "r1", "--all", "--archive",
                                      str(tmp_path / "a"), "--dask", "tcp://127.0.0.1:9"])
    assert result.exit_code != 0 and "cannot reach the Dask scheduler" in result.output
    assert "Traceback" not in result.output


def test_selection_queries_never_scan_a_table_per_row(base: Path, tmp_path: Path) -> None:
    """Every join of the release selection is a key lookup. As one query with a CTE, SQLite
    scanned the whole ranking once per track: 100,000 files did not finish in 10 minutes."""
    archive = _copy(base, tmp_path / "a")
    conn = archive.conn
    conn.execute(release_items.ELIGIBLE_SQL)
    conn.execute(release_items.BEST_SQL)
    create = "CREATE TEMP TABLE release_pick AS"
    for statement in (release_items.FILL_ELIGIBLE_SQL.format(wanted=release_items.WANTED_ALL),
                      release_items.FILL_BEST_SQL, release_items.PICK_SQL,
                      release_items.FACTS_SQL):
        plan = conn.execute("EXPLAIN QUERY PLAN " + statement.replace(create, "")).fetchall()
        scans = [detail for _, _, _, detail in plan
                 if detail.startswith("SCAN") and "COVERING INDEX" not in detail]
        assert len(scans) <= 2 and not [s for s in scans if "LEFT-JOIN" in s], (statement, plan)
        conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM release_pick").fetchone()[0] == 8
    for table in release_items.PICK_TEMPS:
        conn.execute(f"DROP TABLE temp.{table}")
    # The whole selection still works as before.
    report = create_release(archive, "r1", ReleaseOptions(**OPTIONS))
    assert report.selection["files"] == 8


def test_a_full_shard_torrent_opens_within_libtorrent_default_limits(tmp_path: Path) -> None:
    """A shard of the default file count, every file in its own album directory with long
    names (the worst case for size and for libtorrent's per-directory search), loads with
    libtorrent's default limits (10 MB file, 2 M tokens). With 60,000 files per shard the
    torrent was 22.7 MB and libtorrent refused it ("metadata too large")."""
    import hashlib

    import libtorrent as lt

    from musicark.release.hashing import FileHashes
    from musicark.release.metainfo import build_torrent

    count = ReleaseOptions().max_files
    files = []
    for i in range(count):
        artist = f"{i % 997:03d} Artist With A Rather Long Name Indeed"
        album = f"2020 Album Title That Goes On For A While ({i:07d})"
        name = f"01 {artist} - Track Title {'x' * 120} {i:07d}.opus"
        root = hashlib.sha256(i.to_bytes(4, "big")).digest()
        files.append((("data", "popularity-0", "A", "AR", artist, album, name),
                      FileHashes(3000, root[:20], root, None, None)))
    files.sort(key=lambda entry: entry[0])
    torrent = build_torrent("shard", files, 1 << 14)
    path = tmp_path / "shard.torrent"
    path.write_bytes(torrent.data)
    info = lt.torrent_info(str(path))  # the file loader applies the default limits
    assert info.num_files() == 2 * count  # each file and its pad file
    assert len(torrent.data) < 10_000_000
