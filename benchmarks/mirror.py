"""Mirror import benchmark (issue #12): `mirror import` of a fetched release against the
hashing it must do, measured in the same run.

A release of random files (one shard per ~1 GB: a BagIt bag and a hybrid torrent, as
`release create` writes them, plus a catalog snapshot naming every file) is imported into a
new archive. The reference is the shard check alone (`verify.shard.validate_bag` with the
torrent: SHA-256 for the manifest, SHA-1 pieces and SHA-256 v2 leaves, one read per file),
which the import cannot do without; the target is import ≥ 70 % of its speed, registering the
files into the store by hardlink (no byte copied). Files are in the page cache for both
(a warm-up read first). Figures per wall-clock second and per CPU second (the machine is
shared).

    python benchmarks/mirror.py [--gb 2.0] [--file-mb 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))
CORES = os.cpu_count() or 1
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))


def build_release(base: Path, store, items, shard_bytes: int) -> Path:
    """releases/bench: shards/, torrents/, metadata/ (a snapshot whose ledger names every
    file) and torrents.json."""
    from musicark.archive import Archive, utc_now
    from musicark.release.build import ReleaseOptions, shard_torrent
    from musicark.release.paths import track_path
    from musicark.release.shards import Bucket, Shard, auto_piece_length
    from musicark.release.snapshot import write_snapshot

    release = base / "releases" / "bench"
    (release / "torrents").mkdir(parents=True)
    piece = auto_piece_length([i.size for i in items])
    bucket = Bucket("popularity-30", 30, 30)
    shards: list[Shard] = []
    for item in items:
        if not shards or sum(i.size for _, i in shards[-1].entries) >= shard_bytes:
            shards.append(Shard(f"bench-popularity-30-{len(shards) + 1:04d}", bucket))
        shards[-1].add(track_path(bucket.name, ext="flac", **item.path_fields), item)
    for shard in shards:
        _, _, torrent = shard_torrent(shard, release / "shards" / shard.name, store,
                                      group="bench / bench",
                                      options=ReleaseOptions(piece_size=f"{piece // 1024}KiB"))
        (release / "torrents" / f"{shard.name}.torrent").write_bytes(torrent.data)
    with Archive.create(base / "publisher", name="bench") as pub:
        pub.conn.executemany(
            "INSERT INTO files(sha256, size, container, codec, licence, status, added_at) "
            "VALUES (?, ?, 'flac', 'flac', 'CC0-1.0', 'ok', ?)",
            [(i.sha256, i.size, utc_now()) for i in items])
        snap = release / "metadata" / "bench-bench-metadata" / "catalog.sqlite.zst"
        snap.parent.mkdir(parents=True)
        write_snapshot(pub.conn, snap)
    (release / "torrents.json").write_text(json.dumps({"release": "bench", "torrents": []}))
    return release


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--file-mb", type=float, default=5.0)
    args = parser.parse_args()
    from musicark.archive import Archive
    from musicark.mirror import import_mirror
    from musicark.mirror.locate import find_shards
    from musicark.verify.shard import validate_bag
    from musicark.verify.torrent import load_expectations
    from release import make_store  # benchmarks/release.py: random files in a store
    from verify import Timer, warm  # benchmarks/verify.py

    WORK.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=WORK, prefix="mirror-"))
    try:
        store, items = make_store(base, int(args.gb * 1e9), int(args.file_mb * 1e6))
        release = build_release(base, store, items, 1_000_000_000)
        files = [p for p in release.rglob("*") if p.is_file()]
        results: dict = {"bytes": sum(i.size for i in items), "files": len(items),
                         "cores": CORES}
        warm(files)
        shards, _ = find_shards([release])
        with Timer(results, "check"):
            for shard in shards:
                torrent = load_expectations(shard.torrent.read_bytes())
                report = validate_bag(shard.path, torrent, workers=CORES)
                assert not report.problems, report.problems[:3]
        warm(files)
        with Archive.create(base / "mirror", name="bench") as mirror, \
                Timer(results, "import"):
            got = import_mirror(mirror, [release], workers=CORES)
        assert got.exit_code == 0 and got.count("verified") == len(shards)
        results["shards"] = len(shards)
        results["linked"] = sum(s.linked for s in got.shards)
        results["copied"] = sum(s.copied for s in got.shards)
        gb = results["bytes"] / 1e9
        for mode, tail in (("wall", "_s"), ("cpu", "_cpu_s")):
            results[f"{mode}:check_GBps"] = gb / results["check" + tail]
            results[f"{mode}:import_GBps"] = gb / results["import" + tail]
            results[f"{mode}:import_share_of_check"] = (results["check" + tail]
                                                        / results["import" + tail])
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in results.items()}, indent=1))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
