"""Analysis benchmark (issue #22), against a reference in the same run on the same files:

- musicark's analysis (`analyse_file`: decode, FFmpeg's ebur128 meter with true peak, the
  quality measures, the spectrum of lossless files), two worker processes;
- `ffmpeg -af ebur128=peak=true -f null -` (Debian's ffmpeg), two at a time; and the same
  without true peak (`ebur128` alone, its default), for scale.

Runs are interleaved (musicark, ffmpeg, ffmpeg without peak, then again) so a neighbour's
load falls on all of them alike; min/median/max of the runs and the load average are
printed. Input: the decodable music of the shared test material, or the files given.

With --ingest: `musicark ingest --decode-check` with and without `--analyse` into fresh
archives, interleaved the same way (the cost analysis adds to an ingest).

    python benchmarks/analyse.py [--runs 3] [--workers 2] [--ingest] [FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
TESTDATA = Path(os.environ.get("MUSICARK_TESTDATA") or ROOT.parent / "shared" / "testdata")


def _ours(path: str) -> float:
    from musicark.analyse.measure import analyse_file

    result = analyse_file(path)
    if result.outcome != "ok":
        raise SystemExit(f"{path}: {result.reason}")
    return result.audio_s


def _ffmpeg(path: str, meter: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0",
                    "-af", meter, "-f", "null", "-"], check=True)


def run_ours(files: list[str], workers: int) -> tuple[float, float]:
    began = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        audio = sum(pool.map(_ours, files))
    return time.perf_counter() - began, audio


def run_ffmpeg(files: list[str], workers: int, meter: str) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # each thread waits on its own ffmpeg process
        list(pool.map(lambda f: _ffmpeg(f, meter), files))
    return time.perf_counter() - began


def run_ingest(files: list[str], workers: int, analyse: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        musicark = [sys.executable, "-m", "musicark"]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run([*musicark, "init", f"{tmp}/arc"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        began = time.perf_counter()
        subprocess.run([*musicark, "ingest", "--archive", f"{tmp}/arc", "--decode-check",
                        "--workers", str(workers), *(["--analyse"] if analyse else []),
                        *files], check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - began


def bench_ingest(files: list[str], workers: int, runs: int) -> dict:
    times: dict[str, list[float]] = {"ingest --decode-check": [],
                                     "ingest --decode-check --analyse": []}
    for _ in range(runs):
        times["ingest --decode-check"].append(run_ingest(files, workers, False))
        times["ingest --decode-check --analyse"].append(run_ingest(files, workers, True))
    report = {name: {"min": round(min(r), 2), "median": round(statistics.median(r), 2),
                     "max": round(max(r), 2)} for name, r in times.items()}
    report["added"] = round(statistics.median(times["ingest --decode-check --analyse"])
                            / statistics.median(times["ingest --decode-check"]) - 1, 3)
    return report


def default_files() -> list[str]:
    music = TESTDATA / "audio" / "music"
    return sorted(str(p) for p in music.rglob("*")
                  if p.suffix.lower() in (".ogg", ".mp3", ".m4a", ".aac", ".opus", ".flac"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ingest", action="store_true")
    args = parser.parse_args()
    files = args.files or default_files()
    if args.ingest:
        print(json.dumps({"load_average_1min": round(os.getloadavg()[0], 2),
                          **bench_ingest(files, args.workers, args.runs)}, indent=2))
        return
    times: dict[str, list[float]] = {"musicark": [], "ffmpeg ebur128=peak=true": [],
                                     "ffmpeg ebur128": []}
    audio = 0.0
    loads = []
    for _ in range(args.runs):
        loads.append(os.getloadavg()[0])
        seconds, audio = run_ours(files, args.workers)
        times["musicark"].append(seconds)
        times["ffmpeg ebur128=peak=true"].append(run_ffmpeg(files, args.workers,
                                                            "ebur128=peak=true"))
        times["ffmpeg ebur128"].append(run_ffmpeg(files, args.workers, "ebur128"))
    report = {"files": len(files), "audio_hours": round(audio / 3600, 3),
              "workers": args.workers, "runs": args.runs,
              "load_average_1min_at_each_run": [round(x, 2) for x in loads]}
    for name, runs in times.items():
        report[name] = {"min": round(min(runs), 2), "median": round(statistics.median(runs), 2),
                        "max": round(max(runs), 2)}
    ours = statistics.median(times["musicark"])
    report["ratio_vs_ffmpeg_peak"] = round(statistics.median(times["ffmpeg ebur128=peak=true"])
                                           / ours, 2)
    report["ratio_vs_ffmpeg_default"] = round(statistics.median(times["ffmpeg ebur128"]) / ours,
                                              2)
    report["realtime_per_core"] = round(audio / ours / args.workers, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
