"""On-demand benchmarks (not part of CI). Each reports ratios against a reference tool measured
in the same run on the same machine. Results go in docs/benchmarks.md.

    python benchmarks/run.py import --tracks 1000000 10000000
    python benchmarks/run.py import --runs 5 --compare /path/to/older/src   # before/after
    python benchmarks/run.py search --tracks 10000000
    python benchmarks/run.py all          # what `make bench` runs (1 M import + search)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("MUSICARK_BENCH_DIR", ROOT / "bench-work"))

# What the sqlite3 CLI does for the reference: the same CSV, the same indexes and FTS in SQL.
CLI_SQL = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -262144;
.mode csv
.import {csv} raw
CREATE UNIQUE INDEX raw_track_id ON raw(track_id);
CREATE INDEX raw_isrc ON raw(isrc);
CREATE INDEX raw_upc ON raw(upc);
CREATE INDEX raw_album ON raw(album_id, disc_number, track_number);
CREATE INDEX raw_popularity ON raw(popularity);
CREATE INDEX raw_artist ON raw(artist_ids);
CREATE VIRTUAL TABLE raw_fts USING fts5(name, artists, album,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4');
INSERT INTO raw_fts(rowid, name, artists, album) SELECT rowid, name, artists, album FROM raw;
"""


def timed(cmd: list[str], **kwargs) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss // 1024


def synth(tracks: int) -> Path:
    csv = WORK / f"synthetic-{tracks}.csv"
    WORK.mkdir(parents=True, exist_ok=True)
    if not csv.exists():
        print(f"synthesizing {tracks:,} tracks ...", flush=True)
        subprocess.run([sys.executable, "-m", "musicark", "synth", "catalog", "--tracks",
                        str(tracks), str(csv)], check=True)
    return csv


def import_with(csv: Path, tracks: int, src: Path | None = None
                ) -> tuple[float, int, dict, int]:
    """`musicark catalog import` of the CSV into a new archive (from the source tree `src`,
    else this one): seconds, peak RSS, phase seconds, catalog size in MiB."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    archive = WORK / f"archive-{tracks}"
    shutil.rmtree(archive, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "musicark", "init", str(archive)], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    report_file = WORK / f"report-{tracks}.json"
    with open(report_file, "w") as out:
        seconds, rss = timed([sys.executable, "-m", "musicark", "catalog", "import", "--format",
                              "table", str(csv), "--archive", str(archive), "--json"],
                             stdout=out, env=env)
    phases = json.loads(report_file.read_text()).get("phase_seconds", {})
    db_mib = (archive / "catalog.sqlite").stat().st_size >> 20
    return seconds, rss, {k: round(v, 1) for k, v in phases.items()}, db_mib


def bench_import(tracks: int, compare: Path | None = None) -> dict:
    csv = synth(tracks)
    reference_db = WORK / f"reference-{tracks}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{reference_db}{suffix}").unlink(missing_ok=True)
    sql = CLI_SQL.format(csv=csv)
    start = time.perf_counter()
    proc = subprocess.Popen(["sqlite3", str(reference_db)], stdin=subprocess.PIPE, text=True)
    proc.stdin.write(sql)
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    cli_seconds, cli_rss = time.perf_counter() - start, usage.ru_maxrss // 1024
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("sqlite3 reference import failed")

    ours, rss, phases, db_mib = import_with(csv, tracks)
    result = {
        "benchmark": "import", "tracks": tracks, "csv_mib": csv.stat().st_size >> 20,
        "musicark_s": round(ours, 1), "sqlite3_cli_s": round(cli_seconds, 1),
        "ratio": round(ours / cli_seconds, 2), "musicark_peak_rss_mib": rss,
        "sqlite3_peak_rss_mib": cli_rss, "musicark_db_mib": db_mib,
        "reference_db_mib": reference_db.stat().st_size >> 20,
        "musicark_phase_s": phases,
    }
    if compare is not None:  # another source tree of musicark, in the same round
        other, other_rss, other_phases, _ = import_with(csv, tracks, compare)
        result.update(compare_s=round(other, 1), compare_ratio=round(other / cli_seconds, 2),
                      compare_peak_rss_mib=other_rss, compare_phase_s=other_phases)
    print(json.dumps(result), flush=True)
    return result


def queries(archive: Path, n: int, seed: int = 1) -> list[tuple[str, str]]:
    """A mixed workload drawn from the catalog itself: words, prefixes, artists, ISRC, UPC."""
    rng = random.Random(seed)
    conn = sqlite3.connect(archive / "catalog.sqlite")
    top = conn.execute("SELECT max(rowid) FROM tracks").fetchone()[0]
    out: list[tuple[str, str]] = []
    while len(out) < n:
        rowid = rng.randint(1, top)
        row = conn.execute(
            "SELECT t.name, t.isrc, al.upc, (SELECT a.name FROM track_artists ta JOIN artists a "
            "ON a.rowid = ta.artist_rowid WHERE ta.track_rowid = t.rowid AND ta.position = 0) "
            "FROM tracks t LEFT JOIN albums al ON al.rowid = t.album_rowid WHERE t.rowid = ?",
            (rowid,)).fetchone()
        if row is None:
            continue
        name, isrc, upc, artist = row
        words = (name or "").split()
        kind = len(out) % 5
        if kind == 0 and words:
            out.append(("words", " ".join(words[:2])))
        elif kind == 1 and words:
            part = words[0][: max(2, len(words[0]) - 2)]
            # 5+ letters: longer than the FTS prefix indexes ('2 3 4'), the costly kind
            out.append(("prefix5+" if len(part) >= 5 else "prefix", part))
        elif kind == 2 and artist:
            out.append(("artist", artist))
        elif kind == 3 and isrc:
            out.append(("isrc", isrc))
        elif kind == 4 and upc:
            out.append(("upc", upc))
    conn.close()
    return out


def _timed_workload(arc, workload: list[tuple[str, str]]
                    ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU milliseconds per query, by kind. CPU time (this process) is the figure
    that holds up on a machine shared with other work."""
    from musicark.catalog.search import lookup, search

    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for kind, q in workload:
        start, cpu_start = time.perf_counter(), time.process_time()
        if kind in ("isrc", "upc"):
            lookup(arc, [q])
        else:
            search(arc, q, limit=20)
        times.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
        cpu.setdefault(kind, []).append((time.process_time() - cpu_start) * 1000)
    return times, cpu


def bench_search(tracks: int, n: int = 1000) -> dict:
    from musicark.archive import Archive

    archive_path = WORK / f"archive-{tracks}"
    if not (archive_path / "catalog.sqlite").exists():
        bench_import(tracks)
    workload = queries(archive_path, n)
    arc = Archive.open(archive_path, readonly=True)
    _timed_workload(arc, workload)  # warm-up: page cache, as a running server has it
    times, cpu = _timed_workload(arc, workload)
    # The same workload with long prefixes as plain FTS5 prefix queries (before the
    # vocabulary, catalog.terms), back to back in the same run.
    from musicark.catalog import terms

    expand = terms.expand
    terms.expand = lambda conn, prefix: None
    try:
        plain, plain_cpu = _timed_workload(arc, [w for w in workload if w[0] == "prefix5+"])
    finally:
        terms.expand = expand
    every = sorted(t for ts in times.values() for t in ts)

    def pct(values: list[float], p: float) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))], 2)

    # The same word queries as LIKE '%q%' scans over name (what API wrappers of the
    # reference's SQLite dump did), on a sample: a scan takes seconds at this size.
    like_times = []
    samples = int(os.environ.get("MUSICARK_BENCH_LIKE_SAMPLES", "20"))
    for _, q in [w for w in workload if w[0] in ("words", "prefix", "artist")][:samples]:
        start = time.perf_counter()
        arc.conn.execute("SELECT rowid FROM tracks WHERE name LIKE ? ORDER BY popularity DESC "
                         "LIMIT 20", (f"%{q}%",)).fetchall()
        like_times.append((time.perf_counter() - start) * 1000)
    like_times.sort()
    result = {
        "benchmark": "search", "tracks": tracks, "queries": len(every),
        "p50_ms": pct(every, 0.5), "p99_ms": pct(every, 0.99), "max_ms": round(every[-1], 2),
        "by_kind_p50_ms": {k: pct(sorted(v), 0.5) for k, v in times.items()},
        "by_kind_p99_ms": {k: pct(sorted(v), 0.99) for k, v in times.items()},
        "by_kind_cpu_p99_ms": {k: pct(sorted(v), 0.99) for k, v in cpu.items()},
        "plain_prefix5+_p50_ms": pct(sorted(plain.get("prefix5+", [0])), 0.5),
        "plain_prefix5+_p99_ms": pct(sorted(plain.get("prefix5+", [0])), 0.99),
        "plain_prefix5+_cpu_p99_ms": pct(sorted(plain_cpu.get("prefix5+", [0])), 0.99),
        "like_scan_p50_ms": round(statistics.median(like_times), 1),
        "like_scan_samples": len(like_times),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["import", "search", "all"])
    parser.add_argument("--tracks", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--runs", type=int, default=1,
                        help="Repeat each import pair; the median ratio is printed last.")
    parser.add_argument("--compare", type=Path, default=None,
                        help="Also import with the musicark sources in this directory (e.g. an "
                             "older commit's src/) in each round, for before/after ratios.")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if not shutil.which("sqlite3"):
        raise SystemExit("the sqlite3 CLI is needed (make installs Debian's sqlite3)")
    for tracks in args.tracks:
        if args.which in ("import", "all"):
            runs = [bench_import(tracks, args.compare) for _ in range(args.runs)]
            if args.runs > 1:
                summary = {"benchmark": "import", "tracks": tracks, "runs": args.runs,
                           "ratios": [r["ratio"] for r in runs],
                           "median_ratio": statistics.median(r["ratio"] for r in runs)}
                if args.compare is not None:
                    summary["compare_ratios"] = [r["compare_ratio"] for r in runs]
                    summary["compare_median_ratio"] = statistics.median(summary["compare_ratios"])
                print(json.dumps(summary), flush=True)
        if args.which in ("search", "all"):
            bench_search(tracks)


if __name__ == "__main__":
    main()
