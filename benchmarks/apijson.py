"""api-json import speed (issue #16): records/s of `musicark catalog import --format api-json`
against a same-run reference that only parses the same file (one `json.loads` per line, the
least per-record Python any importer of this format does; orjson shown beside it).

    python benchmarks/apijson.py --tracks 100000 1000000 --runs 3

Records are lines (artists, then tracks embedding their album and artists, as
`musicark synth catalog --format api-json` writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))


def synth(tracks: int) -> tuple[Path, int]:
    path = WORK / f"api-{tracks}.json"
    if not path.exists():
        print(f"synthesizing {tracks:,} tracks as api-json ...", flush=True)
        subprocess.run([sys.executable, "-m", "musicark", "synth", "catalog", "--format",
                        "api-json", "--tracks", str(tracks), str(path)], check=True)
    with open(path, "rb") as fh:
        records = sum(1 for line in fh if line.strip())
    return path, records


def parse_only(path: Path, loads) -> float:
    start = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                loads(line)
    return time.perf_counter() - start


def run(tracks: int) -> dict:
    path, records = synth(tracks)
    json_s = parse_only(path, json.loads)
    orjson_s = parse_only(path, orjson.loads)
    archive = WORK / f"archive-api-{tracks}"
    shutil.rmtree(archive, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "musicark", "init", str(archive)], check=True,
                   stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "musicark", "catalog", "import", "--format",
                          "api-json", str(path), "--archive", str(archive), "--json"],
                         check=True, capture_output=True, text=True).stdout
    ours = time.perf_counter() - start
    report = json.loads(out)
    shutil.rmtree(archive, ignore_errors=True)
    result = {
        "benchmark": "api-json import", "tracks": tracks, "records": records,
        "musicark_s": round(ours, 1), "musicark_records_per_s": round(records / ours),
        "json_loads_s": round(json_s, 1), "json_loads_records_per_s": round(records / json_s),
        "orjson_records_per_s": round(records / orjson_s),
        "ratio_to_json_loads": round(ours / json_s, 2),
        "phase_s": {k: round(v, 1) for k, v in report.get("phase_seconds", {}).items()},
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, nargs="+", default=[100_000])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    for tracks in args.tracks:
        rates = [run(tracks)["musicark_records_per_s"] for _ in range(args.runs)]
        if args.runs > 1:
            print(json.dumps({"benchmark": "api-json import", "tracks": tracks,
                              "median_records_per_s": statistics.median(rates)}), flush=True)


if __name__ == "__main__":
    main()
