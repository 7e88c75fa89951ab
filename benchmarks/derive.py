"""Derive benchmarks (issue #4), against a reference in the same run:

- Opus encode throughput: musicark's encoder (PyAV libopus 75 kbit/s VBR, with its decode
  verification) vs `ffmpeg -c:a libopus -b:a 75k` (Debian's ffmpeg) over the same files with
  the same parallelism (all cores);
- median restore-patch size per format after tagging (it should be near the tag block size).

    python benchmarks/derive.py [--files 200]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))
CORES = os.cpu_count() or 1
TESTDATA = ROOT.parent / "shared" / "testdata" / "audio"


def _ffmpeg(args: tuple[str, str]) -> None:
    src, dst = args
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-vn", "-c:a", "libopus",
                    "-b:a", "75k", dst], check=True)


def _ours(args: tuple[str, str]) -> None:
    from musicark.derive.opus import encode_file
    from musicark.ingest.probe import probe

    src, dst = args
    encode_file(Path(src), Path(dst))
    probe(Path(dst), fingerprint=False)  # the verification musicark always does


def _ours_encode_only(args: tuple[str, str]) -> None:
    from musicark.derive.opus import encode_file

    src, dst = args
    encode_file(Path(src), Path(dst))


def bench_opus(files: list[Path]) -> dict:
    out = Path(tempfile.mkdtemp(dir=WORK))
    jobs = {name: [(str(f), str(out / f"{name}-{i}.opus")) for i, f in enumerate(files)]
            for name in ("ffmpeg", "musicark", "encode_only")}
    seconds = {}
    for name, func in (("ffmpeg", _ffmpeg), ("musicark", _ours),
                       ("encode_only", _ours_encode_only)):
        with ProcessPoolExecutor(CORES) as pool:
            list(pool.map(func, jobs[name][:CORES]))  # warm the workers
            start = time.perf_counter()
            list(pool.map(func, jobs[name], chunksize=4))
            seconds[name] = time.perf_counter() - start
    shutil.rmtree(out)
    audio_s = sum(_duration(f) for f in files)
    return {"benchmark": "opus75", "files": len(files), "audio_hours": round(audio_s / 3600, 2),
            "ffmpeg_s": round(seconds["ffmpeg"], 2), "musicark_s": round(seconds["musicark"], 2),
            "ratio_vs_ffmpeg": round(seconds["ffmpeg"] / seconds["musicark"], 2),
            "encode_only_s": round(seconds["encode_only"], 2),
            "encode_only_ratio_vs_ffmpeg": round(seconds["ffmpeg"] / seconds["encode_only"], 2)}


def _duration(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        return float(c.duration or 0) / 1e6


def bench_patches() -> dict:
    from musicark.archive import Archive
    from musicark.derive.tags import extension, tag_stored
    from musicark.ingest.pipeline import ingest

    fields = {"title": "A title", "artist": ["An artist"], "album": "An album",
              "tracknumber": 1, "date": "2024", "isrc": "USAAA2400001",
              "licence": "CC-BY-4.0", "musicark_id": "track:1"}
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        arc = Archive.create(Path(tmp) / "a")
        ingest(arc, [TESTDATA / "music"], workers=CORES, match=False)
        sizes: dict[str, list[int]] = {}
        for sha, container, codec in arc.conn.execute(
                "SELECT sha256, container, codec FROM files WHERE status = 'ok'"):
            result = tag_stored(str(arc.store_path), sha, fields, extension(container, codec))
            if result["ok"]:
                sizes.setdefault(codec, []).append(result["patch_size"])
    return {"benchmark": "restore patches", "median_patch_bytes": {
        codec: {"files": len(v), "median": statistics.median(v)} for codec, v in sizes.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if not shutil.which("ffmpeg"):
        sys.exit("ffmpeg is needed for the reference: apt-get install ffmpeg")
    base = sorted((TESTDATA / "music").rglob("*.ogg"))
    files = (base * (args.files // len(base) + 1))[: args.files]
    print(json.dumps(bench_opus(files)), flush=True)
    print(json.dumps(bench_patches()), flush=True)


if __name__ == "__main__":
    main()
