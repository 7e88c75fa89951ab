"""Planner benchmark (issue #4): time and peak RSS of a plan over N synthetic tracks.

Each size runs in its own process (so peak RSS is that plan's), on synthetic arrays with the
reference's popularity shape; the budget is a third of the bytes all originals would take.

    python benchmarks/plan.py 1000000 10000000
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def one(n: int) -> dict:
    import numpy as np

    from musicark.plan.planner import PlanInput, make_plan
    from musicark.synth import listens_sample, popularity_sample

    rng = np.random.default_rng(0)
    pop = popularity_sample(n, rng)
    duration = rng.integers(60_000, 400_000, n).astype(np.float64)
    inp = PlanInput(listens=listens_sample(pop, rng).astype(np.float64), popularity=pop,
                    duration_ms=duration, original_bytes=duration / 1000 * 20_000,
                    isrc_group=np.where(rng.random(n) < 0.2, rng.integers(0, n // 3, n), -1),
                    priority=rng.random(n))
    start = time.perf_counter()
    plan = make_plan(inp, float(inp.original_bytes.sum()) / 3)
    seconds = time.perf_counter() - start
    summary = plan.summary()
    return {"benchmark": "plan", "tracks": n, "plan_seconds": round(seconds, 2),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "coverage": round(summary["coverage"], 6),
            "reference_coverage": round(summary["reference_rule"]["coverage"], 6),
            "gap_to_lp_bound": summary["gap_to_lp_bound"]}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]))))
    else:
        for n in [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]:
            subprocess.run([sys.executable, __file__, "--one", str(n)], check=True)
