"""How workers start (issue #25): ingest, verify and release hashing with the code of two
source trees (e.g. before and after a change to musicark.processes), interleaved run by run
so both see the same load. Each run is a fresh process, as a CLI run is: a fork server's
start is part of what it measures (and the time to the first result shows it apart).

    python benchmarks/processes.py --before /tmp/old/src --after src [--synth 150] [--runs 3]

Material: the shared test corpus's real music clips (audio/music) and `--synth` tracks of
synthetic audio, all distinct: every file is examined, stored, hashed and decoded.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("start", "ingest", "verify", "verify-decode", "hash")

RUN = r"""
import json, sys, time
from pathlib import Path
from musicark.archive import Archive
work, material, what = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
first = []
def seen(*_):
    if not first:
        first.append(time.perf_counter())
began = time.perf_counter()
if what == "start":  # the fixed cost: a pool of 2 workers started for 2 trivial calls
    import operator
    from musicark.runner import fan_out
    files, nbytes = len(list(fan_out(operator.mul, [(1, 1), (2, 2)], workers=2))), 0
elif what == "ingest":
    arc = Archive.create(work / "arc")
    from musicark.ingest.pipeline import ingest
    report = ingest(arc, [material], workers=2, match=False, progress=seen)
    files, nbytes = report.examined, report.bytes
elif what.startswith("verify"):
    from musicark.verify import ScrubOptions, verify_store
    with Archive.open(work / "arc") as arc:
        report = verify_store(arc, ScrubOptions(decode=what == "verify-decode", walk=False),
                              workers=2, progress=seen)
    files, nbytes = report.files, report.bytes
else:
    from musicark.release import hashing
    paths = sorted(p for p in material.rglob("*") if p.is_file())
    results = list(hashing.hash_files(paths, 1 << 18, with_sha256=True, workers=2,
                                      progress=seen))
    files, nbytes = len(results), sum(r.size for r in results)
end = time.perf_counter()
print(json.dumps({"files": files, "bytes": nbytes, "seconds": end - began,
                  "to_first": (first[0] if first else end) - began}))
"""

def material(testdata: Path, dest: Path, synth: int) -> Path:
    """The shared corpus's real music clips, and `synth` tracks of synthetic audio (unique
    bytes, formats as `musicark synth audio` writes them)."""
    from musicark.synth_audio import write_audio

    clips = sorted(p for p in (testdata / "audio" / "music").rglob("*")
                   if p.is_file() and p.suffix.lower() in
                   {".mp3", ".ogg", ".flac", ".wav", ".m4a", ".opus", ".aac", ".wma"})
    (dest / "real").mkdir(parents=True)
    for i, clip in enumerate(clips):
        shutil.copy(clip, dest / "real" / f"{i:03d}{clip.suffix}")
    write_audio(dest / "synth", synth)
    return dest


def run(src: str, work: Path, source: Path, what: str) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    if what == "ingest" and (work / "arc").exists():
        shutil.rmtree(work / "arc")
    out = subprocess.run([sys.executable, "-c", RUN, str(work), str(source), what],
                         capture_output=True, text=True, env=env, check=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the src folder of the old code")
    parser.add_argument("--after", default=str(ROOT / "src"))
    parser.add_argument("--synth", type=int, default=150, help="synthetic tracks")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--testdata", default=os.environ.get("MUSICARK_TESTDATA")
                        or str(ROOT.parent / "shared" / "testdata"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = material(Path(args.testdata), Path(tmp) / "music", args.synth)
        seconds: dict = {(v, w): [] for v in ("before", "after") for w in WORKLOADS}
        to_first: dict = {(v, w): [] for v in ("before", "after") for w in WORKLOADS}
        sizes: dict = {}
        loads = [os.getloadavg()[0]]
        for _ in range(args.runs):
            for variant, src in (("before", args.before), ("after", args.after)):
                work = Path(tmp) / variant
                work.mkdir(exist_ok=True)
                for what in WORKLOADS:
                    got = run(src, work, source, what)
                    seconds[variant, what].append(got["seconds"])
                    to_first[variant, what].append(got["to_first"])
                    sizes[what] = (got["files"], got["bytes"])
            loads.append(os.getloadavg()[0])
    rows = []
    for what in WORKLOADS:
        files, nbytes = sizes[what]
        before = statistics.median(seconds["before", what])
        after = statistics.median(seconds["after", what])
        rows.append({"workload": what, "files": files, "MB": round(nbytes / 1e6, 1),
                     "before_s": round(before, 2), "after_s": round(after, 2),
                     "before_MB_s": round(nbytes / 1e6 / before, 1) if nbytes else None,
                     "after_MB_s": round(nbytes / 1e6 / after, 1) if nbytes else None,
                     "after_over_before": round(before / after, 2),
                     "to_first_result_before_s": round(
                         statistics.median(to_first["before", what]), 2),
                     "to_first_result_after_s": round(
                         statistics.median(to_first["after", what]), 2),
                     "runs_before": [round(x, 2) for x in seconds["before", what]],
                     "runs_after": [round(x, 2) for x in seconds["after", what]]})
    print(json.dumps({"load_1min": [round(x, 1) for x in loads], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
