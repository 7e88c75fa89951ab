"""Serve benchmark (issue #6): 50 concurrent clients for 30 s against search and lookup on a
1 M-track archive, on loopback, with wrk (Debian's), reporting requests/s, p50/p99 and
errors.

The workload is drawn from the catalog itself (benchmarks/run.py `queries`): words,
prefixes, artists (search), ISRCs and UPCs (lookup). wrk is closed-loop: each of the 50
connections sends its next request when the last one returns, so latency = 50 / throughput.

    python benchmarks/serve.py [--tracks 1000000] [--workers 2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True,
                         check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sockets.group(1).strip() if sockets else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk (make bench installs it)")
    archive = WORK / f"archive-{args.tracks}"
    if not (archive / "catalog.sqlite").exists():
        bench_import(args.tracks)
    from musicark.archive import Archive

    Archive.open(archive).close()  # schema upgrades, before serving read-only
    paths = []
    for kind, q in queries(archive, 2000):
        if kind in ("isrc", "upc"):
            paths.append("/api/v1/lookup?" + urllib.parse.urlencode({"id": q}))
        else:
            paths.append("/api/v1/search?" + urllib.parse.urlencode({"q": q, "limit": 20}))
    listing = WORK / "serve-paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = WORK / "serve-load.lua"
    script.write_text(LUA % listing)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "musicark", "serve", str(archive),
                               "--port", str(port), "--workers", str(args.workers)],
                              stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        wrk(url, script, 5, args.connections)  # warm the page cache and the workers
        result = wrk(url, script, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps({"benchmark": "serve", "tracks": args.tracks, "workers": args.workers,
                      "connections": args.connections, "seconds": args.seconds,
                      "mix": {"search": sum("/search" in p for p in paths),
                              "lookup": sum("/lookup" in p for p in paths)}, **result}))


if __name__ == "__main__":
    main()
