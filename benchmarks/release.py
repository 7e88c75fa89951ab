"""Release benchmark (issue #5): shard build throughput, against references in the same run.

- musicark: BagIt bag (hardlinks, manifest from the ledger) + hybrid v1+v2 torrent from one
  read pass in worker processes (`release.build.shard_torrent`, what `release create` runs);
- libtorrent's own `create_torrent` + `set_piece_hashes` for the same hybrid torrent;
- `mktorrent -t CORES` (v1 only; Debian's mktorrent);
- the machine's limit for SHA-1 + SHA-256 over every byte on all cores, from
  `openssl speed -bytes 16384 sha1 sha256`.

Files are random bytes (hashing does not care what they hold), read from the page cache in
every run (a warm-up read first), so the figures compare hashing work, not the disk.

    python benchmarks/release.py [--gb 1.0] [--file-mb 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))
CORES = os.cpu_count() or 1


def openssl_limit() -> dict:
    out = subprocess.run(["openssl", "speed", "-seconds", "2", "-bytes", "16384", "sha1",
                          "sha256"], capture_output=True, text=True, check=True).stdout
    speeds = {}
    for line in out.splitlines():
        m = re.match(r"^(sha1|sha256)\s+([\d.]+)k", line)
        if m:
            speeds[m.group(1)] = float(m.group(2)) * 1000  # bytes/s, one core
    per_core = 1 / (1 / speeds["sha1"] + 1 / speeds["sha256"])
    return {"sha1_core_GBps": speeds["sha1"] / 1e9, "sha256_core_GBps": speeds["sha256"] / 1e9,
            "limit_GBps": per_core * CORES / 1e9}


def make_store(base: Path, total: int, file_size: int):
    from musicark.ingest.store import Store
    from musicark.release.items import ReleaseItem, TrackFacts

    store = Store(base / "store")
    items = []
    for i in range(max(1, total // file_size)):
        src = base / "incoming.bin"
        src.write_bytes(os.urandom(file_size - (i % 7) * 1013))
        sha, size = store.put(src)
        item = ReleaseItem(i + 1, sha, size, "flac", "original", "CC0-1.0", sha)
        item.tracks.append(TrackFacts(i + 1, f"Track {i}", f"x{i}", None, None, "bench", 30,
                                      1000.0))
        item.path_fields = {"artist": f"Artist {i % 40}", "album": f"Album {i % 90}",
                            "album_id": f"a{i % 90}", "year": "2020", "disc": 1,
                            "number": i % 20 + 1, "discs": 1, "title": f"Track {i}"}
        items.append(item)
    return store, items


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(8 << 20):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--file-mb", type=float, default=5.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import libtorrent as lt

    from musicark.release.build import shard_torrent
    from musicark.release.metainfo import libtorrent_reference
    from musicark.release.options import ReleaseOptions
    from musicark.release.paths import track_path
    from musicark.release.shards import Bucket, Shard, auto_piece_length

    WORK.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=WORK, prefix="release-"))
    try:
        store, items = make_store(base, int(args.gb * 1e9), int(args.file_mb * 1e6))
        total = sum(i.size for i in items)
        piece = auto_piece_length([i.size for i in items])
        bucket = Bucket("popularity-30", 30, 30)
        shard = Shard("bench-popularity-30-0001", bucket)
        for item in items:
            shard.add(track_path(bucket.name, ext="flac", **item.path_fields), item)
        warm([store.path_for(i.sha256) for i in items])
        results = {"bytes": total, "files": len(items), "piece_length": piece, "cores": CORES}

        start = time.perf_counter()
        root = base / "shards" / shard.name
        bag, _, ours = shard_torrent(shard, root, store, group="bench",
                                     options=ReleaseOptions(piece_size=f"{piece // 1024}KiB"))
        results["musicark_s"] = time.perf_counter() - start

        ct = libtorrent_reference(root, [r for r, _ in bag.entries], piece)
        start = time.perf_counter()
        lt.set_piece_hashes(ct, str(root.parent))
        ref = lt.torrent_info(ct.generate()).info_hashes()
        results["libtorrent_s"] = time.perf_counter() - start
        results["same_infohashes"] = (str(ref.v1), str(ref.v2)) == (ours.btih, ours.btmh)

        if shutil.which("mktorrent"):
            out = base / "mk.torrent"
            start = time.perf_counter()
            subprocess.run(["mktorrent", "-t", str(CORES), "-l",
                            str(piece.bit_length() - 1), "-o", str(out), str(root)], check=True,
                           stdout=subprocess.DEVNULL)
            results["mktorrent_v1_s"] = time.perf_counter() - start

        limit = openssl_limit()
        results.update(limit)
        gb = total / 1e9
        results["musicark_GBps"] = gb / results["musicark_s"]
        results["libtorrent_GBps"] = gb / results["libtorrent_s"]
        results["vs_libtorrent"] = results["libtorrent_s"] / results["musicark_s"]
        results["share_of_limit"] = results["musicark_GBps"] / limit["limit_GBps"]
        if "mktorrent_v1_s" in results:
            results["mktorrent_v1_GBps"] = gb / results["mktorrent_v1_s"]
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in results.items()}, indent=1))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
