"""Ingest benchmarks (issues #3 and #16), each against a reference measured in the same run,
reference and musicark back to back, `--runs` times; the summary gives each ratio's median:

- sha256: the store's hashing (`Store.put --link`: hardlink, then hash what landed) of large
  files, page cache warm, CORES processes, vs `openssl speed -multi CORES -evp sha256` (1 MiB
  blocks), the limit of this machine at this moment;
- link: `musicark ingest --link --no-fingerprint` (structure check, SHA-256 of every byte,
  tags, ledger) in files/s vs beets `import -A -C -q` (tags and a database row: no hashing,
  no check) from its own virtualenv (made under WORK on first use);
- fingerprint: `musicark ingest --link` (fingerprints too) in files/s vs `fpcalc -raw` alone
  over the same files, CORES at a time;
- copy: `musicark ingest --copy --no-fingerprint` vs `cp -r` of the tree + `sha256sum` of its
  files (CORES at a time), in seconds; and the store's copy alone (`Store.put`, one pass).

    python benchmarks/ingest.py [--files 1000] [--runs 3] [--only sha256,link,...]

Scratch data goes to $MUSICARK_BENCH_DIR (default: bench-work/ in the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mutagen import File as MutagenFile

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))
CORES = os.cpu_count() or 1
LARGE_FILE_MB = 128
MUSICARK = [sys.executable, "-m", "musicark"]
BENCHMARKS = ("sha256", "link", "fingerprint", "copy")


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


def _warm(paths: list[Path]) -> None:
    """Read every file once, so each side measures its own work, not the disk."""
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 22):
                pass


def _timed(cmd: list[str], **kwargs) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs).stdout
    return time.perf_counter() - start, out


# -- SHA-256 ---------------------------------------------------------------------------------
def large_files() -> list[Path]:
    folder = WORK / "sha-large"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"large-{i}.bin" for i in range(2 * CORES)]
    for p in paths:
        if not p.exists() or p.stat().st_size != LARGE_FILE_MB << 20:
            with open(p, "wb") as fh:
                for _ in range(LARGE_FILE_MB):
                    fh.write(os.urandom(1 << 20))
    return paths


def openssl_limit() -> float:
    """Bytes/s of `openssl speed -multi CORES -evp sha256` on 1 MiB blocks, all processes."""
    out = subprocess.run(["openssl", "speed", "-multi", str(CORES), "-evp", "sha256",
                          "-seconds", "3", "-bytes", str(1 << 20)],
                         capture_output=True, text=True, check=True).stdout
    return float(re.findall(r"sha256\s+([\d.]+)k", out, re.I)[-1]) * 1000


def _store_hash(args: tuple[str, str]) -> int:
    from musicark.ingest.store import Store

    path, store = args
    return Store(Path(store)).put(Path(path), link=True, sync_dir=False)[1]


def bench_sha256(pool: ProcessPoolExecutor) -> dict:
    """Ours between two openssl measurements (their mean is the limit): the machine's load
    changes within seconds when it is shared."""
    paths = large_files()
    _warm(paths)
    before = openssl_limit()
    store = WORK / "sha-store"
    total = 0
    start = time.perf_counter()
    for _ in range(2):  # two passes over the files: long enough to time
        shutil.rmtree(store, ignore_errors=True)
        total += sum(pool.map(_store_hash, [(str(p), str(store)) for p in paths]))
    ours = total / (time.perf_counter() - start)
    shutil.rmtree(store, ignore_errors=True)
    limit = (before + openssl_limit()) / 2
    return {"musicark_MBps": round(ours / 1e6), "openssl_multi_MBps": round(limit / 1e6),
            "ratio": round(ours / limit, 3)}


# -- ingest runs -----------------------------------------------------------------------------
def run_ingest(tree: Path, *flags: str) -> tuple[float, dict]:
    archive = WORK / "ingest-archive"
    shutil.rmtree(archive, ignore_errors=True)
    subprocess.run([*MUSICARK, "init", str(archive)], check=True, stdout=subprocess.DEVNULL)
    seconds, out = _timed([*MUSICARK, "ingest", str(tree), "--archive", str(archive),
                           "--json", *flags])
    report = json.loads(out)
    shutil.rmtree(archive, ignore_errors=True)
    return seconds, report


def beets() -> Path:
    """beets in its own virtualenv under WORK (never in the repository), made on first use."""
    venv = WORK / "beets-venv"
    beet = venv / "bin" / "beet"
    if not beet.exists():
        print(f"making {venv} with beets (once)", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "beets"], check=True)
    return beet


def run_beets(tree: Path) -> tuple[float, int]:
    """Seconds of `beet import -A -C -q` and how many files it imported."""
    home = WORK / "beets-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    (home / "config.yaml").write_text(
        f"directory: {home / 'music'}\nlibrary: {home / 'library.db'}\nimport:\n"
        "  copy: no\n  write: no\n  autotag: no\n  quiet: yes\nplugins: []\n")
    seconds, _ = _timed([str(beets()), "-c", str(home / "config.yaml"), "import", "-A", "-C",
                         "-q", str(tree)], env={**os.environ, "BEETSDIR": str(home)})
    with sqlite3.connect(home / "library.db") as conn:
        imported = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    shutil.rmtree(home, ignore_errors=True)
    return seconds, imported


def bench_link(tree: Path, files: int) -> dict:
    beets_s, imported = run_beets(tree)
    ours_s, report = run_ingest(tree, "--link", "--no-fingerprint")
    ours = report["examined"] / ours_s
    theirs = imported / beets_s
    return {"musicark_files_per_s": round(ours, 1), "beets_files_per_s": round(theirs, 1),
            "beets_imported": imported, "files": files, "ratio": round(ours / theirs, 3)}


def _fpcalc(path: str) -> int:
    out = subprocess.run(["fpcalc", "-raw", path], capture_output=True, text=True).stdout
    return int("FINGERPRINT=" in out)


def bench_fingerprint(tree: Path, paths: list[Path], pool: ProcessPoolExecutor) -> dict:
    start = time.perf_counter()
    printed = sum(pool.map(_fpcalc, map(str, paths), chunksize=8))
    fpcalc_s = time.perf_counter() - start
    ours_s, report = run_ingest(tree, "--link")
    ours = report["examined"] / ours_s
    theirs = len(paths) / fpcalc_s
    return {"musicark_files_per_s": round(ours, 1), "fpcalc_files_per_s": round(theirs, 1),
            "fpcalc_printed": printed, "ratio": round(ours / theirs, 3)}


def _store_copy(args: tuple[list[str], str]) -> int:
    from musicark.ingest.store import Store

    paths, store = args
    return sum(Store(Path(store)).put(Path(p), sync_dir=False)[1] for p in paths)


def bench_copy(tree: Path, paths: list[Path], pool: ProcessPoolExecutor) -> dict:
    dest = WORK / "cp-dest"
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()  # each side starts without the other's dirty pages to write back
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(tree), str(dest)], check=True)
    subprocess.run(["xargs", "-0", "-P", str(CORES), "-n", "64", "sha256sum"],
                   input=b"\0".join(map(os.fsencode, paths)), check=True,
                   stdout=subprocess.DEVNULL)
    reference_s = time.perf_counter() - start
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    ours_s, _ = run_ingest(tree, "--copy", "--no-fingerprint")
    store = WORK / "copy-store"
    shutil.rmtree(store, ignore_errors=True)
    os.sync()
    start = time.perf_counter()
    names = [str(p) for p in paths]
    sum(pool.map(_store_copy, [(names[i::CORES], str(store)) for i in range(CORES)]))
    Path(store).mkdir(exist_ok=True)
    from musicark.ingest.store import Store

    Store(store).sync()  # as ingest does once a ledger batch
    store_s = time.perf_counter() - start
    shutil.rmtree(store, ignore_errors=True)
    return {"cp_sha256sum_s": round(reference_s, 2), "musicark_ingest_copy_s": round(ours_s, 2),
            "ratio": round(reference_s / ours_s, 3), "store_copy_s": round(store_s, 2),
            "store_copy_ratio": round(reference_s / store_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    chosen = [b for b in args.only.split(",") if b]
    if unknown := set(chosen) - set(BENCHMARKS):
        parser.error(f"unknown benchmark: {', '.join(sorted(unknown))}")
    WORK.mkdir(parents=True, exist_ok=True)
    tree = build_tree(args.files)
    paths = sorted(p for p in tree.rglob("*.*") if p.is_file())
    results: dict[str, list[dict]] = {name: [] for name in chosen}
    with ProcessPoolExecutor(CORES) as pool:
        list(pool.map(abs, range(CORES)))  # start the workers before timing
        for run in range(args.runs):
            _warm(paths)
            for name in chosen:
                if name == "sha256":
                    result = bench_sha256(pool)
                elif name == "link":
                    result = bench_link(tree, len(paths))
                elif name == "fingerprint":
                    result = bench_fingerprint(tree, paths, pool)
                else:
                    result = bench_copy(tree, paths, pool)
                results[name].append(result)
                print(json.dumps({"run": run + 1, "benchmark": name, **result}), flush=True)
    summary = {name: {key: statistics.median(r[key] for r in runs)
                      for key in runs[0] if isinstance(runs[0][key], float | int)}
               for name, runs in results.items()}
    print(json.dumps({"summary_medians": summary, "runs": args.runs, "cores": CORES,
                      "files": len(paths)}), flush=True)


if __name__ == "__main__":
    main()
