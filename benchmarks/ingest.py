"""Ingest benchmarks (issue #3), each against a reference measured in the same run:

- fingerprinting: musicark's decode + libchromaprint vs `fpcalc` over the same files, both
  with the same parallelism (all cores);
- hashing: musicark's store SHA-256 throughput vs `openssl speed -evp sha256` × cores;
- ingest throughput (files/s, MB/s) with and without fingerprints vs beets
  (`beet import -A -C -q`, autotagging off) installed in its own virtualenv.

    python benchmarks/ingest.py [--files 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mutagen import File as MutagenFile

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))
CORES = os.cpu_count() or 1


def build_tree(files: int) -> Path:
    """`files` distinct audio files: synthetic pieces, copied with a unique comment tag."""
    tree = WORK / f"ingest-tree-{files}"
    if tree.is_dir() and sum(1 for _ in tree.rglob("*.*")) >= files:
        return tree
    from musicark.synth_audio import write_audio

    base = write_audio(WORK / "ingest-base", 40, seed=11)
    tree.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        src = base[i % len(base)]
        dest = tree / f"d{i % 20:02d}" / f"{i:05d}{src.suffix}"
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(src, dest)
        audio = MutagenFile(dest)
        if dest.suffix == ".m4a":
            audio["©cmt"] = f"copy {i}"
        elif dest.suffix == ".mp3":
            from mutagen.id3 import COMM

            audio.tags.add(COMM(encoding=3, lang="eng", desc="", text=f"copy {i}"))
        else:
            audio["comment"] = f"copy {i}"
        audio.save()
    return tree


def _ours_fingerprint(path: str) -> int:
    from musicark.ingest.probe import probe

    return len(probe(Path(path)).fingerprint)


def _fpcalc(path: str) -> int:
    out = subprocess.run(["fpcalc", "-raw", path], capture_output=True, text=True).stdout
    return out.count(",") + 1


def bench_fingerprint(paths: list[str]) -> dict:
    results = {}
    for name, func in (("fpcalc", _fpcalc), ("musicark", _ours_fingerprint)):
        start = time.perf_counter()
        with ProcessPoolExecutor(CORES) as pool:
            list(pool.map(func, paths, chunksize=8))
        results[name] = time.perf_counter() - start
    return {"benchmark": "fingerprint", "files": len(paths), "parallelism": CORES,
            "fpcalc_s": round(results["fpcalc"], 2), "musicark_s": round(results["musicark"], 2),
            "ratio_vs_fpcalc": round(results["fpcalc"] / results["musicark"], 2)}


def _hash_one(path: str) -> int:
    from musicark.ingest.store import sha256_file

    return sha256_file(Path(path))[1]


def bench_hash(paths: list[str]) -> dict:
    out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-seconds", "3", "-bytes",
                          "1048576"], capture_output=True, text=True).stdout
    per_core = float(re.findall(r"sha256\s+([\d.]+)k", out, re.I)[-1]) * 1000  # bytes/s
    for p in paths:  # warm the page cache so both sides measure hashing, not the disk
        Path(p).read_bytes()
    with ProcessPoolExecutor(CORES) as pool:
        list(pool.map(_hash_one, paths[:CORES]))  # start the workers before timing
        start = time.perf_counter()
        total = sum(pool.map(_hash_one, paths * 3, chunksize=8))
        ours = total / (time.perf_counter() - start)
    return {"benchmark": "sha256", "bytes": total, "musicark_MBps": round(ours / 1e6, 1),
            "openssl_MBps_x_cores": round(per_core * CORES / 1e6, 1),
            "share_of_limit": round(ours / (per_core * CORES), 2)}


def bench_ingest(tree: Path, fingerprint: bool) -> dict:
    archive = WORK / f"ingest-archive-{'fp' if fingerprint else 'nofp'}"
    shutil.rmtree(archive, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "musicark", "init", str(archive)], check=True,
                   stdout=subprocess.DEVNULL)
    cmd = [sys.executable, "-m", "musicark", "ingest", str(tree), "--archive", str(archive),
           "--json"] + ([] if fingerprint else ["--no-fingerprint"])
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seconds = time.perf_counter() - start
    report = json.loads(out)
    return {"files": report["examined"], "seconds": round(seconds, 1),
            "files_per_s": round(report["examined"] / seconds, 1),
            "MB_per_s": round(sum(p.stat().st_size for p in tree.rglob("*.*")) / seconds / 1e6, 1)}


def bench_beets(tree: Path) -> dict | None:
    beet = WORK / "beets-venv" / "bin" / "beet"
    if not beet.exists():
        return None
    home = WORK / "beets-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    (home / "config.yaml").write_text(
        f"directory: {home / 'music'}\nlibrary: {home / 'library.db'}\nimport:\n"
        "  copy: yes\n  write: no\n  autotag: no\n  quiet: yes\nplugins: []\n")
    start = time.perf_counter()
    subprocess.run([str(beet), "-c", str(home / "config.yaml"), "import", "-A", "-C", "-q",
                    str(tree)], check=True, capture_output=True, env={**os.environ,
                                                                    "BEETSDIR": str(home)})
    seconds = time.perf_counter() - start
    files = sum(1 for _ in tree.rglob("*.*"))
    return {"files": files, "seconds": round(seconds, 1),
            "files_per_s": round(files / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--only", choices=["fingerprint", "hash", "ingest"])
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    tree = build_tree(args.files)
    paths = sorted(str(p) for p in tree.rglob("*.*"))
    if args.only in (None, "fingerprint"):
        print(json.dumps(bench_fingerprint(paths[:400])), flush=True)
    if args.only in (None, "hash"):
        print(json.dumps(bench_hash(paths)), flush=True)
    if args.only not in (None, "ingest"):
        return
    with_fp = bench_ingest(tree, True)
    without = bench_ingest(tree, False)
    beets = bench_beets(tree)
    result = {"benchmark": "ingest", "musicark_with_fingerprints": with_fp,
              "musicark_without_fingerprints": without, "beets_import_A_C": beets}
    if beets:
        result["ratio_vs_beets"] = round(without["files_per_s"] / beets["files_per_s"], 1)
        result["ratio_vs_beets_with_fingerprints"] = round(
            with_fp["files_per_s"] / beets["files_per_s"], 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
