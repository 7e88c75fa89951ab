"""Serve benchmark (issues #6, #16): 50 concurrent clients for 30 s against search and lookup
on a 1 M-track archive, on loopback, with wrk (Debian's), reporting requests/s, p50/p99,
errors and how many answers came from the response cache.

The workload is drawn from the catalog itself (benchmarks/run.py `queries`): words,
prefixes, artists (search), ISRCs and UPCs (lookup), `--paths` distinct requests drawn at
random. wrk is closed-loop: each of the 50 connections sends its next request when the last
one returns, so latency = 50 / throughput. Each run starts a fresh server (empty cache),
warms it for 5 s, then measures; `--cache-seconds 60 0` measures with the response cache
and without it, alternately in the same run (the machine may be shared: compare those).

    python benchmarks/serve.py [--tracks 1000000] [--workers 2] [--seconds 30] [--runs 3]
        [--cache-seconds 60 0] [--paths 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import WORK, bench_import, queries  # noqa: E402

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(7)
hits, misses = 0, 0
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
response = function(status, headers, body)
  if headers["x-musicark-cache"] == "hit" then hits = hits + 1 else misses = misses + 1 end
end
done = function(summary, latency, requests)
  local h, m = 0, 0
  for _, t in ipairs(threads) do h = h + t:get("hits"); m = m + t:get("misses") end
  io.write(string.format("cache hits %%d misses %%d\\n", h, m))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its children still running (the
    uvicorn workers of a server), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def own(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / tick

    total = own(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                total += own(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


def wrk(url: str, script: Path, seconds: int, connections: int, server: int | None = None
        ) -> dict:
    """wrk's figures, with the CPU seconds per request of the server (`server`: its pid)
    and of wrk itself: on a shared machine, what a request costs is steadier than its
    latency."""
    before = cpu_seconds(server) if server else 0.0
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                             "-s", str(script), url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, errors_text = proc.communicate()
    server_cpu = cpu_seconds(server) - before if server else 0.0
    now = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the one child reaped since
    wrk_cpu = now.ru_utime + now.ru_stime - reaped.ru_utime - reaped.ru_stime
    if proc.returncode or errors_text.strip():  # a script error: wrk falls back to GET /
        raise SystemExit(f"wrk: {errors_text.strip()}")

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cache = re.search(r"cache hits (\d+) misses (\d+)", out)
    hits, misses = (int(cache.group(1)), int(cache.group(2))) if cache else (0, 0)
    sockets = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sockets.group(1).strip() if sockets else None,
            "cache_hit_share": round(hits / max(1, hits + misses), 3),
            "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, hits + misses), 3),
            "wrk_cpu_ms_per_request": round(wrk_cpu * 1000 / max(1, hits + misses), 3)}


def serve(archive: Path, workers: int, cache_seconds: float, script: Path, seconds: int,
          connections: int) -> dict:
    """A fresh server (empty cache), warmed for 5 s, measured for `seconds`."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "musicark", "serve", str(archive),
                               "--port", str(port), "--workers", str(workers),
                               "--cache-seconds", str(cache_seconds)],
                              stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        wrk(url, script, 5, connections)  # warm the page cache and the workers
        return wrk(url, script, seconds, connections, server.pid)
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--paths", type=int, default=2000,
                        help="distinct requests in the workload")
    parser.add_argument("--cache-seconds", type=float, nargs="+", default=[60.0],
                        help="server --cache-seconds values, measured alternately per run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench installs it)")
    archive = WORK / f"archive-{args.tracks}"
    if not (archive / "catalog.sqlite").exists():
        bench_import(args.tracks)
    from musicark.archive import Archive

    Archive.open(archive).close()  # schema upgrades, before serving read-only
    paths = []
    for kind, q in queries(archive, args.paths):
        if kind in ("isrc", "upc"):
            paths.append("/api/v1/lookup?" + urllib.parse.urlencode({"id": q}))
        else:
            paths.append("/api/v1/search?" + urllib.parse.urlencode({"q": q, "limit": 20}))
    listing = WORK / "serve-paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = WORK / "serve-load.lua"
    script.write_text(LUA % listing)
    for run in range(1, args.runs + 1):
        for cache_seconds in args.cache_seconds:
            result = serve(archive, args.workers, cache_seconds, script, args.seconds,
                           args.connections)
            print(json.dumps({
                "benchmark": "serve", "run": run, "tracks": args.tracks,
                "workers": args.workers, "cache_seconds": cache_seconds,
                "connections": args.connections, "seconds": args.seconds,
                "mix": {"search": sum("/search" in p for p in paths),
                        "lookup": sum("/lookup" in p for p in paths)},
                "load_average": round(os.getloadavg()[0], 1), **result}), flush=True)


if __name__ == "__main__":
    main()
