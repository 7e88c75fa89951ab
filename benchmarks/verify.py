"""Fixity benchmark (issue #11), against references measured in the same run.

- store verify (`verify_store`, worker processes over mmap) against the machine's limit,
  `openssl speed -elapsed -evp sha256 -multi CORES` (16 KiB blocks, wall-clock), and against
  `sha256sum` over the same files;
- every figure twice: per wall-clock second (what a user waits; on a machine shared with
  other work it also measures the neighbours) and per CPU second (each contender's own
  efficiency, against `openssl speed` on one core: robust to load, blind to parallelism);
- releases verify (`shard.validate_bag` with the shard's torrent: SHA-256 for the manifest,
  SHA-1 pieces and SHA-256 v2 leaves, one read per file) against the machine's limit for those
  hashes (`openssl speed -multi CORES` sha1 and sha256: every byte goes through SHA-1 once
  and SHA-256 twice) and against `bagit.py --validate --processes CORES` followed by a
  libtorrent force-recheck of the same shard.
- store verify with `--decode` (issue #16: SHA-256 and a full decode of every audio file, in
  CORES worker processes) against `ffmpeg -v error -i F -f null -` on the same files, CORES
  ffmpeg processes at a time: files/s and × real time (seconds of audio per wall second),
  the median of `--repeat` runs, each contender right after the other.

Files are random bytes (decode: real audio, see `decode_material`), in the page cache for
every contender (a warm-up read first).

    python benchmarks/verify.py [--gb 1.0] [--file-mb 5] [--only hash|decode] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))
CORES = os.cpu_count() or 1
sys.path.insert(0, str(ROOT / "benchmarks"))


def cpu() -> float:
    """CPU seconds of this process and of every child it has waited for (worker pools,
    subprocesses): on a machine shared with other work, CPU time compares efficiency where
    wall time also measures the neighbours."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Timer:
    def __init__(self, results: dict, name: str) -> None:
        self.results, self.name = results, name

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.results[f"{self.name}_s"] = time.perf_counter() - self.wall
        self.results[f"{self.name}_cpu_s"] = cpu() - self.cpu


def openssl_speed(*algorithms: str, evp: bool = False, wall: bool = True
                  ) -> dict[str, float]:
    """Bytes/s for 16 KiB blocks, per algorithm: with `wall`, summed over all cores
    (`-multi CORES -elapsed`); else per CPU second of one core (openssl's own default)."""
    speeds = {}
    for algorithm in algorithms:
        cmd = ["openssl", "speed", "-seconds", "3", "-bytes", "16384"]
        cmd += ["-elapsed", "-multi", str(CORES)] if wall else []
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
    times: dict = {}
    with Timer(times, "store_musicark"):
        report = verify_store(archive, ScrubOptions(walk=False), workers=CORES)
    assert report.files == len(items) and not report.problems
    with Timer(times, "store_sha256sum"):
        subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    archive.close()
    return times


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
    times: dict = {}
    with Timer(times, "release_musicark"):
        report = validate_bag(root, expected, workers=CORES)
    assert not report.problems, report.problems[:3]

    bagit = shutil.which("bagit.py") or str(Path(sys.executable).parent / "bagit.py")
    for label, extra in (("default", []), ("all_cores", ["--processes", str(CORES)])):
        with Timer(times, f"bagit_validate_{label}"):
            subprocess.run([bagit, "--validate", "--quiet", *extra, str(root)], check=True)
    for label, settings in (("default", {}),
                            ("all_cores", {"aio_threads": CORES, "hashing_threads": CORES})):
        with Timer(times, f"libtorrent_recheck_{label}"):
            assert _recheck(torrent.data, root, settings)
    times["release_bytes"] = report.bytes
    return times


def _recheck(data: bytes, root: Path, settings: dict) -> bool:
    """libtorrent checks a complete download of the shard; True when it found it whole."""
    import libtorrent as lt

    session = lt.session({"enable_dht": False, "enable_lsd": False, "enable_upnp": False,
                          "enable_natpmp": False, "listen_interfaces": "127.0.0.1:0",
                          **settings})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(data)
    params.save_path = str(root.parent)
    handle = session.add_torrent(params)
    while True:
        status = handle.status()
        if status.state not in (lt.torrent_status.checking_files,
                                lt.torrent_status.checking_resume_data) and status.has_metadata:
            break
        time.sleep(0.02)
    complete = handle.status().is_seeding
    session.remove_torrent(handle)
    return complete


MUSIC = Path(os.environ.get("MUSICARK_TESTDATA") or ROOT.parent / "shared" / "testdata"
             ) / "audio" / "music"
ALBUM = "singularity-endgame-ost"
# the album again in the codecs archives hold most (the source is Ogg Vorbis)
ENCODES = {"flac": ["-c:a", "flac"], "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"]}


def decode_material(base: Path) -> list[Path]:
    """Every recording of the shared test music (Ogg Vorbis, MP3, AAC, ALAC, Opus) and the
    album encoded again as FLAC and MP3 by ffmpeg: real audio, the codecs an archive holds."""
    music = MUSIC
    sources = sorted(p for p in music.rglob("*") if p.suffix in
                     (".ogg", ".mp3", ".aac", ".m4a", ".opus", ".flac"))
    if not sources:
        sys.exit(f"no test music at {music} (set MUSICARK_TESTDATA)")
    out = base / "encodes"
    out.mkdir()
    files = list(sources)
    for ext, codec in ENCODES.items():
        for src in sorted((music / ALBUM).glob("*.ogg")):
            dest = out / f"{src.stem}.{ext}"
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-map", "0:a", *codec,
                            str(dest)], check=True)
            files.append(dest)
    return files


def decode_bench(base: Path, repeat: int) -> dict:
    """verify store --decode against ffmpeg decoding the same files to null, CORES at a time."""
    import av

    from musicark.archive import Archive, utc_now
    from musicark.ingest.store import Store
    from musicark.verify import ScrubOptions, verify_store

    files = decode_material(base)
    archive = Archive.create(base / "decode-archive")
    store = Store(archive.store_path)
    paths, audio_s = [], 0.0
    for src in files:
        sha, size = store.put(src)
        with av.open(str(src)) as container:
            codec = container.streams.audio[0].codec_context.name
            audio_s += container.duration / 1e6
        archive.conn.execute("INSERT INTO files(sha256, size, codec, status, added_at) "
                             "VALUES (?, ?, ?, 'ok', ?)", (sha, size, codec, utc_now()))
        paths.append(store.path_for(sha))
    nbytes = sum(p.stat().st_size for p in paths)
    warm(paths)

    def ffmpeg(path: Path) -> None:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null",
                        "-"], check=True)

    runs: dict[str, list[float]] = {k: [] for k in (
        "musicark_s", "musicark_cpu_s", "ffmpeg_s", "ffmpeg_cpu_s")}
    decoded_s = 0.0
    for _ in range(repeat):
        times: dict = {}
        with Timer(times, "musicark"):
            report = verify_store(archive, ScrubOptions(decode=True, walk=False),
                                  workers=CORES)
        assert report.files == len(paths) and not report.problems, report.problems[:3]
        decoded_s = report.notes["audio_seconds"]
        with Timer(times, "ffmpeg"), ThreadPoolExecutor(CORES) as pool:
            list(pool.map(ffmpeg, paths))
        for key, value in times.items():
            runs[key].append(value)
    archive.close()
    median = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "decode:files": len(paths), "decode:bytes": nbytes, "decode:repeat": repeat,
        "decode:audio_hours": audio_s / 3600, "decode:decoded_audio_hours": decoded_s / 3600,
        "decode:musicark_files_per_s": len(paths) / median["musicark_s"],
        "decode:ffmpeg_files_per_s": len(paths) / median["ffmpeg_s"],
        "decode:musicark_x_realtime": decoded_s / median["musicark_s"],
        "decode:ffmpeg_x_realtime": decoded_s / median["ffmpeg_s"],
        "decode:musicark_vs_ffmpeg_wall": median["ffmpeg_s"] / median["musicark_s"],
        "decode:musicark_vs_ffmpeg_cpu": median["ffmpeg_cpu_s"] / median["musicark_cpu_s"],
        "decode:runs_musicark_s": [round(v, 2) for v in runs["musicark_s"]],
        "decode:runs_ffmpeg_s": [round(v, 2) for v in runs["ffmpeg_s"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--file-mb", type=float, default=5.0)
    parser.add_argument("--only", choices=("hash", "decode"))
    parser.add_argument("--repeat", type=int, default=3, help="decode runs (the median)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from release import make_store  # benchmarks/release.py: random files in a store

    WORK.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=WORK, prefix="verify-"))
    try:
        if args.only != "hash":
            decoded = decode_bench(base, args.repeat)
            if args.only == "decode":
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                  for k, v in decoded.items()}, indent=1))
                return
        store, items = make_store(base, int(args.gb * 1e9), int(args.file_mb * 1e6))
        total = sum(i.size for i in items)
        results: dict = {"bytes": total, "files": len(items), "cores": CORES}
        results.update(store_bench(base, store, items))
        results.update(release_bench(base, store, items))
        gb = total / 1e9
        release_gb = results.pop("release_bytes") / 1e9
        for mode, elapsed in (("wall", True), ("cpu", False)):
            tail = "_s" if mode == "wall" else "_cpu_s"
            evp = openssl_speed("sha256", evp=True, wall=elapsed)["sha256"] / 1e9
            plain = openssl_speed("sha1", "sha256", wall=elapsed)
            limit = 1 / (1 / plain["sha1"] + 2 / plain["sha256"]) / 1e9  # SHA-1 + 2 SHA-256
            # wall: GB per second on all cores; cpu: GB per CPU second, as openssl on one core
            ours_store = gb / results["store_musicark" + tail]
            ours_release = release_gb / results["release_musicark" + tail]
            results[f"{mode}:openssl_evp_sha256_GBps"] = evp
            results[f"{mode}:store_GBps"] = ours_store
            results[f"{mode}:store_share_of_openssl"] = ours_store / evp
            results[f"{mode}:store_vs_sha256sum"] = results["store_sha256sum" + tail] / results[
                "store_musicark" + tail]
            results[f"{mode}:release_limit_GBps"] = limit
            results[f"{mode}:release_GBps"] = ours_release
            results[f"{mode}:release_share_of_limit"] = ours_release / limit
            for label in ("default", "all_cores"):
                results[f"{mode}:release_vs_bagit_plus_recheck_{label}"] = (
                    results[f"bagit_validate_{label}" + tail]
                    + results[f"libtorrent_recheck_{label}" + tail]
                ) / results["release_musicark" + tail]
        if args.only != "hash":
            results.update(decoded)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in results.items()}, indent=1))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
