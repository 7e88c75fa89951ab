"""Planner benchmark (issue #4): time and peak RSS of a plan over N synthetic tracks.

Each size runs in its own process (so peak RSS is that plan's, inputs included), on compact
synthetic arrays (float32 listens and sizes, int8 popularity, int32 durations and ISRC ids)
with the reference's popularity shape; the budget is a third of the bytes of all originals.

    python benchmarks/plan.py 1000000 10000000

With `--archive PATH` (an archive with an imported catalog, e.g. one built by
`benchmarks/run.py import`), it times reading the catalog for a plan in bulk columns
against the old row-by-row read (the reference, same run, median of `--repeat`), and
`plan create` end to end, each per 1 M tracks:

    python benchmarks/plan.py --archive bench-work/archive-10000000 --repeat 3
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def synthetic_input(n: int, chunk: int = 1 << 22):
    """Compact arrays (21 bytes a track), filled chunk by chunk so generating them never
    holds a float64 copy of the whole catalog."""
    import numpy as np

    from musicark.plan.planner import PlanInput
    from musicark.synth import listens_sample, popularity_sample

    rng = np.random.default_rng(0)
    inp = PlanInput(listens=np.empty(n, np.float32), popularity=np.empty(n, np.int8),
                    duration_ms=np.empty(n, np.int32), original_bytes=np.empty(n, np.float32),
                    isrc_group=np.empty(n, np.int32), priority=np.empty(n, np.float32))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        sl = slice(start, start + m)
        pop = popularity_sample(m, rng)
        inp.popularity[sl] = pop
        inp.listens[sl] = listens_sample(pop, rng)
        duration = rng.integers(60_000, 400_000, m)
        inp.duration_ms[sl] = duration
        inp.original_bytes[sl] = duration / 1000 * 20_000
        inp.isrc_group[sl] = np.where(rng.random(m) < 0.2, rng.integers(0, n // 3, m), -1)
        inp.priority[sl] = rng.random(m)
    return inp


def one(n: int) -> dict:
    from musicark.plan.budget import chunks
    from musicark.plan.planner import make_plan

    inp = synthetic_input(n)
    input_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    budget = sum(float(inp.original_bytes[sl].sum(dtype="float64")) for sl in chunks(n)) / 3
    start = time.perf_counter()
    plan = make_plan(inp, budget)
    seconds = time.perf_counter() - start
    summary = plan.summary()
    return {"benchmark": "plan", "tracks": n, "plan_seconds": round(seconds, 2),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "input_rss_mib": input_rss,
            "coverage": round(summary["coverage"], 6),
            "reference_coverage": round(summary["reference_rule"]["coverage"], 6),
            "gap_to_lp_bound": summary["gap_to_lp_bound"]}


def on_archive(path: str, repeat: int) -> dict:
    """Catalog read (bulk vs row by row, alternating) and `plan create` end to end."""
    import statistics

    from musicark.archive import Archive
    from musicark.plan.plans import create_plan, read_columns, read_columns_by_row

    arc = Archive.open(path)
    n = arc.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    bulk, by_row, cpu, row_cpu = [], [], [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        read_columns(arc)
        bulk.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        start, cpu_start = time.perf_counter(), time.process_time()
        read_columns_by_row(arc)
        by_row.append(time.perf_counter() - start)
        row_cpu.append(time.process_time() - cpu_start)
    budget = float(arc.conn.execute("SELECT sum(coalesce(duration_ms, 0)) FROM tracks")
                   .fetchone()[0] or 0) / 1000 * 20_000 / 3
    start, cpu_start = time.perf_counter(), time.process_time()
    create_plan(arc, budget)
    plan_s, plan_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    per_m = 1e6 / n
    return {"benchmark": "plan-archive", "tracks": n, "repeat": repeat,
            "read_bulk_s_per_1m": round(statistics.median(bulk) * per_m, 3),
            "read_bulk_cpu_s_per_1m": round(statistics.median(cpu) * per_m, 3),
            "read_row_by_row_s_per_1m": round(statistics.median(by_row) * per_m, 3),
            "read_row_by_row_cpu_s_per_1m": round(statistics.median(row_cpu) * per_m, 3),
            "speedup": round(statistics.median(by_row) / statistics.median(bulk), 2),
            "cpu_speedup": round(statistics.median(row_cpu) / statistics.median(cpu), 2),
            "plan_create_s_per_1m": round(plan_s * per_m, 3),
            "plan_create_cpu_s_per_1m": round(plan_cpu * per_m, 3),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--archive":
        reps = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
        print(json.dumps(on_archive(sys.argv[2], reps)))
    elif len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]))))
    else:
        for n in [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]:
            subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)
