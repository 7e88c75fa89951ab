"""Fixity benchmark (issue #11), against references measured in the same run.

- store verify (`verify_store`, worker processes over mmap) against the machine's limit,
  `openssl speed -elapsed -evp sha256 -multi CORES` (16 KiB blocks, wall-clock), and against
  `sha256sum` over the same files;
- releases verify (`shard.validate_bag` with the shard's torrent: SHA-256 for the manifest,
  SHA-1 pieces and SHA-256 v2 leaves, one read per file) against the machine's limit for those
  hashes (`openssl speed -multi CORES` sha1 and sha256: every byte goes through SHA-1 once
  and SHA-256 twice) and against `bagit.py --validate --processes CORES` followed by a
  libtorrent force-recheck of the same shard.

Files are random bytes, in the page cache for every contender (a warm-up read first).

    python benchmarks/verify.py [--gb 1.0] [--file-mb 5]
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
sys.path.insert(0, str(ROOT / "benchmarks"))


def openssl_multi(*algorithms: str, evp: bool = False) -> dict[str, float]:
    """Bytes/s summed over all cores for 16 KiB blocks, per algorithm."""
    speeds = {}
    for algorithm in algorithms:
        # -elapsed: wall-clock time, as every other figure here. Without it openssl reports
        # per CPU second, which on a busy machine is up to twice what wall time allows.
        cmd = ["openssl", "speed", "-elapsed", "-seconds", "3", "-bytes", "16384", "-multi",
               str(CORES)]
        cmd += ["-evp", algorithm] if evp else [algorithm]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.match(rf"^(?:evp\s+)?{algorithm}\s+([\d.]+)k", line.strip())
            if m:
                speeds[algorithm] = float(m.group(1)) * 1000
    return speeds


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(8 << 20):
                pass


def store_bench(base: Path, store, items) -> dict:
    from musicark.archive import Archive, utc_now
    from musicark.verify import ScrubOptions, verify_store

    archive = Archive.create(base / "archive")
    shutil.rmtree(archive.store_path)
    os.symlink(store.root, archive.store_path)
    archive.conn.executemany(
        "INSERT INTO files(sha256, size, status, added_at) VALUES (?, ?, 'ok', ?)",
        [(i.sha256, i.size, utc_now()) for i in items])
    paths = [store.path_for(i.sha256) for i in items]
    warm(paths)
    start = time.perf_counter()
    report = verify_store(archive, ScrubOptions(walk=False), workers=CORES)
    ours = time.perf_counter() - start
    assert report.files == len(items) and not report.problems
    start = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    sha256sum = time.perf_counter() - start
    archive.close()
    return {"store_musicark_s": ours, "store_sha256sum_s": sha256sum}


def release_bench(base: Path, store, items) -> dict:

    from musicark.release.build import ReleaseOptions, shard_torrent
    from musicark.release.paths import track_path
    from musicark.release.shards import Bucket, Shard, auto_piece_length
    from musicark.verify.shard import validate_bag
    from musicark.verify.torrent import load_expectations

    piece = auto_piece_length([i.size for i in items])
    bucket = Bucket("popularity-30", 30, 30)
    shard = Shard("bench-popularity-30-0001", bucket)
    for item in items:
        shard.add(track_path(bucket.name, ext="flac", **item.path_fields), item)
    root = base / "shards" / shard.name
    _, _, torrent = shard_torrent(shard, root, store, group="bench",
                                  options=ReleaseOptions(piece_size=f"{piece // 1024}KiB"))
    warm([p for p in root.rglob("*") if p.is_file()])
    expected = load_expectations(torrent.data)
    start = time.perf_counter()
    report = validate_bag(root, expected, workers=CORES)
    ours = time.perf_counter() - start
    assert not report.problems, report.problems[:3]

    bagit = shutil.which("bagit.py") or str(Path(sys.executable).parent / "bagit.py")
    times = {"release_musicark_s": ours}
    for label, extra in (("default", []), ("all_cores", ["--processes", str(CORES)])):
        start = time.perf_counter()
        subprocess.run([bagit, "--validate", "--quiet", *extra, str(root)], check=True)
        times[f"bagit_validate_{label}_s"] = time.perf_counter() - start
    for label, settings in (("default", {}),
                            ("all_cores", {"aio_threads": CORES, "hashing_threads": CORES})):
        times[f"libtorrent_recheck_{label}_s"], complete = _recheck(torrent.data, root,
                                                                    settings)
        assert complete
    times["release_bytes"] = report.bytes
    return times


def _recheck(data: bytes, root: Path, settings: dict) -> tuple[float, bool]:
    """Seconds libtorrent takes to check a complete download of the shard."""
    import libtorrent as lt

    session = lt.session({"enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                          "enable_natpmp": False, "listen_interfaces": "127.0.0.1:0",
                          **settings})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(data)
    params.save_path = str(root.parent)
    start = time.perf_counter()
    handle = session.add_torrent(params)
    while True:
        status = handle.status()
        if status.state not in (lt.torrent_status.checking_files,
                                lt.torrent_status.checking_resume_data) and status.has_metadata:
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    complete = handle.status().is_seeding
    session.remove_torrent(handle)
    return seconds, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--file-mb", type=float, default=5.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from release import make_store  # benchmarks/release.py: random files in a store

    WORK.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=WORK, prefix="verify-"))
    try:
        store, items = make_store(base, int(args.gb * 1e9), int(args.file_mb * 1e6))
        total = sum(i.size for i in items)
        results: dict = {"bytes": total, "files": len(items), "cores": CORES}
        results.update(store_bench(base, store, items))
        results.update(release_bench(base, store, items))
        evp = openssl_multi("sha256", evp=True)["sha256"]
        plain = openssl_multi("sha1", "sha256")
        gb = total / 1e9
        results["openssl_evp_sha256_multi_GBps"] = evp / 1e9
        results["store_GBps"] = gb / results["store_musicark_s"]
        results["store_share_of_openssl"] = results["store_GBps"] / results[
            "openssl_evp_sha256_multi_GBps"]
        results["store_vs_sha256sum"] = results["store_sha256sum_s"] / results[
            "store_musicark_s"]
        limit = 1 / (1 / plain["sha1"] + 2 / plain["sha256"])  # SHA-1 once, SHA-256 twice
        results["release_limit_GBps"] = limit / 1e9
        release_gb = results.pop("release_bytes") / 1e9
        results["release_GBps"] = release_gb / results["release_musicark_s"]
        results["release_share_of_limit"] = results["release_GBps"] / results[
            "release_limit_GBps"]
        for label in ("default", "all_cores"):
            results[f"release_vs_bagit_plus_recheck_{label}"] = (
                results[f"bagit_validate_{label}_s"] + results[f"libtorrent_recheck_{label}_s"]
            ) / results["release_musicark_s"]
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in results.items()}, indent=1))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
