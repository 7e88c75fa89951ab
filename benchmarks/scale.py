"""Scale curves (issue #16): every catalog stage at 1 M, 10 M and 50 M tracks, for the log-log
plot and the 256 M projection in docs/scale.md (made by benchmarks/scale_plot.py).

For each size: the synthetic source (benchmarks/run.py's generator; above --synth-max, copies
of that size's catalog with new identifiers), the `sqlite3` CLI reference import and
`catalog import` (same run; the import runs the library call the CLI makes, in a child,
timing each phase), DB and per-table/per-index sizes (dbstat), search p50/p99 by kind
(run.py's query mix, split into one word, two words, prefixes of 2-4 and of 5+ letters,
artist, ISRC, UPC; wall and CPU time), `stats`, `plan create`, `catalog export` (jsonl, to
a pipe), and serve with wrk (benchmarks/serve.py's approach: the JSON API and the web search
page, p50/p99 and the server's CPU per request). Every stage runs in its own process, so its
peak RSS is its own; seconds are wall time of the whole command (Python start-up included).

Results go to benchmarks/results/scale-LABEL.json after every stage (atomically), with the
load average around each stage; a run resumes: stages already measured for a size are
skipped unless --force. Scratch data goes to $MUSICARK_BENCH_DIR.

    MUSICARK_BENCH_DIR=/work/bench-scale python benchmarks/scale.py \
        --tracks 1000000 10000000 50000000 --label merged
    python benchmarks/scale_plot.py benchmarks/results/scale-merged.json
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import CLI_SQL, WORK, queries, synth  # noqa: E402
from serve import LUA, serve  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MUSICARK = [sys.executable, "-m", "musicark"]
STAGES = ("source", "reference_import", "import", "sizes", "search", "stats", "plan",
          "export", "serve")
SEARCH_KINDS = ("word", "words", "prefix_2_4", "prefix_5plus", "artist", "isrc", "upc")


# -- measuring one child process ----------------------------------------------------------
class DiskPeak:
    """Samples the bytes of the given files twice a second while a stage runs (a catalog in
    WAL mode can hold its whole import in the -wal file: the peak is what the disk needs)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths, self.peak = paths, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        total = 0
        for p in self.paths:
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, self._size())

    def __enter__(self) -> DiskPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._size())


def run_child(cmd: list[str], *, stdin_text: str | None = None,
              consume: Callable[[object], None] | None = None) -> dict:
    """Wall seconds and peak RSS (MiB, the process and its reaped children) of one command;
    stdout goes to `consume` when given (it reads the pipe), else to /dev/null."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_text is not None else None,
                            stdout=subprocess.PIPE if consume else subprocess.DEVNULL,
                            text=stdin_text is not None)
    if stdin_text is not None:
        proc.stdin.write(stdin_text)
        proc.stdin.close()
    if consume:
        consume(proc.stdout)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed (exit {os.waitstatus_to_exitcode(status)}): "
                         f"{' '.join(cmd)}")
    # CPU seconds (user + system, the process and its reaped children): on a shared machine
    # the figure the queue for a core does not stretch.
    return {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": usage.ru_maxrss // 1024}


def child_json(cmd: list[str]) -> tuple[dict, dict]:
    """run_child for a command that prints one JSON document: (its measure, the document)."""
    chunks: list[bytes] = []
    measure = run_child(cmd, consume=lambda pipe: chunks.append(pipe.read()))
    return measure, json.loads(b"".join(chunks))


def db_files(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm")]


def remove_db(db: Path) -> None:
    for p in db_files(db):
        p.unlink(missing_ok=True)


# -- stages -------------------------------------------------------------------------------
def source_path(tracks: int) -> Path:
    """The size's synthetic CSV, or its zstd-compressed form (kept so above --compress-above:
    50 M tracks are 15 GB of CSV, 4 GB compressed; the importer reads .zst itself)."""
    csv = WORK / f"synthetic-{tracks}.csv"
    packed = csv.with_name(csv.name + ".zst")
    return packed if packed.exists() and not csv.exists() else csv


def stage_source(tracks: int, synth_max: int, compress_above: int) -> dict:
    """run.py's synthetic catalog; above `synth_max`, copies of the synth_max one with new
    identifiers (`replicate`): the generator writes ~40 k tracks/s on one core, 21 min for
    50 M on a quiet machine, and hours on a shared one."""
    csv = WORK / f"synthetic-{tracks}.csv"
    existed = source_path(tracks).exists()
    start = time.perf_counter()
    out: dict = {}
    if tracks > synth_max:
        out["replicated_from"] = synth_max
    if not existed and tracks <= synth_max:
        synth(tracks)
    elif not existed:
        if tracks % synth_max:
            raise SystemExit(f"{tracks:,} is not a multiple of --synth-max {synth_max:,}")
        replicate(synth(synth_max), tracks // synth_max, csv)
    if csv.exists():
        out["csv_bytes"] = csv.stat().st_size
    if tracks > compress_above and csv.exists():
        subprocess.run(["zstd", "-q", "-3", "--rm", str(csv)], check=True)
    out["source"] = source_path(tracks).name
    out["source_bytes"] = source_path(tracks).stat().st_size
    if not existed:
        out["source_seconds"] = round(time.perf_counter() - start, 1)
    return out


def replicate(base: Path, copies: int, out: Path) -> None:
    """Write `copies` copies of a synthetic catalog CSV, each but the first with new
    identifiers: every track, album and artist id loses its last base62 character and starts
    with a per-copy one, ISRC registrants likewise, and UPCs get their first digit moved by
    the copy number (check digit kept valid; distinct for up to 10 copies). Titles, names,
    popularity and listens repeat, as in a catalog that grows with the same vocabulary and
    the same distributions."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from musicark.synth import B62, TABLE_COLUMNS

    tmp = out.with_name(f".{out.name}.partial")
    with open(tmp, "wb") as fh:
        with open(base, "rb") as src:
            shutil.copyfileobj(src, fh, 1 << 24)
        for copy in range(1, copies):
            print(f"  replicating: copy {copy + 1} of {copies}", flush=True)
            reader = pacsv.open_csv(base, convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in TABLE_COLUMNS}),
                read_options=pacsv.ReadOptions(block_size=1 << 26))
            writer = None
            for batch in reader:
                cols = {name: batch.column(name) for name in batch.schema.names}
                mark = B62[copy]
                for name in ("track_id", "album_id", "artist_ids"):
                    cols[name] = pc.replace_substring_regex(
                        cols[name], r"(^|;)([0-9A-Za-z]{21})[0-9A-Za-z]", "\\1" + mark + "\\2")
                cols["isrc"] = pc.replace_substring_regex(
                    cols["isrc"], r"^(..)(..).", "\\1" + B62[36 + copy % 26] + "\\2")
                cols["upc"] = shifted_upc(cols["upc"], copy)
                table = pa.table(cols)
                if writer is None:
                    writer = pacsv.CSVWriter(fh, table.schema, write_options=pacsv.WriteOptions(
                        include_header=False, quoting_style="needed"))
                writer.write_table(table)
            if writer is not None:
                writer.close()
    os.replace(tmp, out)


def shifted_upc(upc, copy: int):
    """12-digit UPC-A with its first digit moved by `copy` (mod 10) and the check digit
    fixed: the first digit weighs 3 in the check."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def mod10(x):  # x ≥ 0; pc.divide truncates integers
        return pc.subtract(x, pc.multiply(pc.divide(x, 10), 10))

    value = pc.cast(upc, pa.int64())
    first = pc.divide(value, 10**11)
    rest = pc.subtract(value, pc.multiply(first, 10**11))
    check = mod10(rest)
    new_first = mod10(pc.add(first, copy))
    # check - 3·(new_first - first), kept non-negative (≥ -27) before the modulo
    new_check = mod10(pc.add(pc.subtract(check, pc.multiply(pc.subtract(new_first, first), 3)),
                             30))
    value = pc.add(pc.add(pc.multiply(new_first, 10**11), pc.subtract(rest, check)), new_check)
    return pc.utf8_lpad(pc.cast(value, pa.string()), 12, "0")


def stage_reference_import(tracks: int, budget_gib: float) -> dict:
    csv = source_path(tracks)
    if csv.suffix == ".zst":
        csv = f"\"|zstd -dc {csv}\""  # the CLI's .import reads a command's output
    db = WORK / f"reference-{tracks}.sqlite"
    # The CLI's DB is ~0.6 GiB a million tracks, and its -wal holds the .import's rows.
    need = tracks / 1e6 * 0.6 * 1.6 * 2**30
    free_budget = budget_gib * 2**30 - scratch_bytes()
    if need > free_budget:
        return {"skipped": f"disk: the reference needs ~{need / 2**30:.0f} GiB, "
                           f"{free_budget / 2**30:.0f} GiB left of the scratch budget"}
    remove_db(db)
    with DiskPeak(db_files(db)) as disk:
        out = run_child(["sqlite3", str(db)], stdin_text=CLI_SQL.format(csv=csv))
    out.update(db_bytes=db.stat().st_size, peak_disk_bytes=disk.peak)
    remove_db(db)  # only its figures are kept: it is the largest file of the run
    return out


def stage_import(tracks: int) -> dict:
    csv = source_path(tracks)
    archive = WORK / f"archive-{tracks}"
    shutil.rmtree(archive, ignore_errors=True)
    subprocess.run([*MUSICARK, "init", str(archive)], check=True, stdout=subprocess.DEVNULL)
    db = archive / "catalog.sqlite"
    with DiskPeak(db_files(db)) as disk:
        out, report = child_json([sys.executable, __file__, "--child-import", str(csv),
                                  str(archive)])
    out.update(db_bytes=db.stat().st_size, peak_disk_bytes=disk.peak, **report)
    return out


def child_import(csv: Path, archive: Path) -> dict:
    """In the child: what `musicark catalog import --format table` does, with the time of
    each phase the importer reports, and of closing the catalog (the WAL checkpoint)."""
    from musicark.archive import Archive
    from musicark.catalog import import_source

    start = time.perf_counter()
    marks: list[tuple[str, float]] = [("reading and writing batches", start)]
    arc = Archive.locate(archive)
    report = import_source(arc, "table", csv,
                           phase=lambda name: marks.append((name, time.perf_counter())))
    marks.append(("closing the catalog", time.perf_counter()))
    arc.close()
    end = time.perf_counter()
    phases = {name: round(((marks[i + 1][1] if i + 1 < len(marks) else end) - at), 2)
              for i, (name, at) in enumerate(marks)}
    return {"counts": report.counts, "bad_rows": report.bad_rows,
            "duplicates": report.duplicates, "import_seconds": round(report.seconds, 2),
            "phases": phases}


def stage_sizes(tracks: int) -> dict:
    """Bytes of every table and index (dbstat), FTS shadow tables summed under their table."""
    db = WORK / f"archive-{tracks}" / "catalog.sqlite"
    start = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    master = conn.execute("SELECT name, type, tbl_name, sql FROM sqlite_master").fetchall()
    kinds = {name: kind for name, kind, _, _ in master}
    owners = {name: table for name, _, table, _ in master}
    fts = [name for name, _, _, sql in master if sql and "VIRTUAL TABLE" in sql.upper()]
    tables: dict[str, int] = {}
    indexes: dict[str, int] = {}
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    # pageno is the page count in aggregate mode; SQLite 3.40's aggregate pgsize is a 32-bit
    # sum that wraps above 2 GiB (the 4 GB tracks table of 50 M came out negative).
    for name, pages in conn.execute("SELECT name, pageno FROM dbstat WHERE aggregate = 1"):
        size = pages * page
        owner = next((f for f in fts if name.startswith(f + "_")), None)
        if owner:
            tables[owner] = tables.get(owner, 0) + size
        elif kinds.get(name) == "index" or name.startswith("sqlite_autoindex"):
            indexes[f"{owners.get(name, '?')}.{name}"] = size
        else:
            tables[name] = tables.get(name, 0) + size
    conn.close()
    return {"db_bytes": db.stat().st_size, "seconds": round(time.perf_counter() - start, 1),
            "tables": dict(sorted(tables.items(), key=lambda kv: -kv[1])),
            "indexes": dict(sorted(indexes.items(), key=lambda kv: -kv[1]))}


def search_workload(archive: Path, per_kind: int, seed: int) -> list[tuple[str, str]]:
    """run.py's mix (two title words, a title prefix, an artist, an ISRC, a UPC), with the
    first word alone as a single-word query and prefixes split by length; title words of 6+
    letters also give a 5+-letter prefix, which run.py's mix draws too rarely for a p99."""
    rng = random.Random(seed)
    out: dict[str, list[str]] = {k: [] for k in SEARCH_KINDS}
    for kind, q in queries(archive, per_kind * 10, seed=seed):
        if kind == "words":
            out["words"].append(q)
            out["word"].append(q.split()[0])
            out["prefix_5plus"] += [w[:rng.randint(5, len(w) - 1)] for w in q.split()
                                    if len(w) >= 6]
        elif kind.startswith("prefix"):  # run.py names 5+ letters "prefix5+"
            out["prefix_5plus" if len(q) >= 5 else "prefix_2_4"].append(q)
        else:
            out[kind].append(q)
    mix = [(k, q) for k, qs in out.items() for q in qs[:per_kind]]
    rng.shuffle(mix)
    return mix


def child_search(archive: Path, per_kind: int) -> dict:
    """In the child: one warm-up pass (other queries), then the measured pass, per kind."""
    from musicark.archive import Archive
    from musicark.catalog.search import lookup, search

    arc = Archive.open(archive, readonly=True)

    def one(kind: str, q: str) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.thread_time()
        if kind in ("isrc", "upc"):
            lookup(arc, [q])
        else:
            search(arc, q, limit=20)
        return (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000

    for kind, q in search_workload(archive, per_kind // 2, seed=2):
        one(kind, q)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for kind, q in search_workload(archive, per_kind, seed=1):
        w, c = one(kind, q)
        wall.setdefault(kind, []).append(w)
        cpu.setdefault(kind, []).append(c)
    every = sorted(t for ts in wall.values() for t in ts)
    # Wall time is what a user waits; CPU time is the same query without the waits for a
    # core that a shared machine adds (it leaves out waits for the disk too).
    return {"queries": len(every), "p50_ms": pct(every, 0.5), "p99_ms": pct(every, 0.99),
            "by_kind": {k: {"n": len(v), "p50_ms": pct(sorted(v), 0.5),
                            "p99_ms": pct(sorted(v), 0.99), "max_ms": round(max(v), 2),
                            "cpu_p50_ms": pct(sorted(cpu[k]), 0.5),
                            "cpu_p99_ms": pct(sorted(cpu[k]), 0.99)}
                        for k, v in sorted(wall.items())}}


def pct(values: list[float], p: float) -> float:
    return round(values[min(len(values) - 1, int(p * len(values)))], 2)


def stage_search(tracks: int, per_kind: int) -> dict:
    measure, doc = child_json([sys.executable, __file__, "--child-search",
                               str(WORK / f"archive-{tracks}"), str(per_kind)])
    return {**measure, **doc}


def stage_stats(tracks: int) -> dict:
    return run_child([*MUSICARK, "stats", "--archive", str(WORK / f"archive-{tracks}"),
                      "--json"])


def stage_plan(tracks: int) -> dict:
    # 1.4 MB a track: about a third of the originals as the planner models them (160 kbit/s,
    # ~210 s a track), as benchmarks/plan.py; a budget that holds everything plans nothing.
    budget = f"{tracks * 1.4 / 1000:.0f}GB"
    measure, doc = child_json([*MUSICARK, "plan", "create", "--budget", budget, "--archive",
                               str(WORK / f"archive-{tracks}"), "--json"])
    return {**measure, "budget": budget, "coverage": round(doc["coverage"], 6)}


def stage_export(tracks: int) -> dict:
    """Flat JSONL to a pipe (counted, not stored: 50 M tracks would be ~20 GB of disk)."""
    count = [0, 0]

    def drain(pipe) -> None:
        while chunk := pipe.read(1 << 20):
            count[0] += len(chunk)
            count[1] += chunk.count(b"\n")

    measure = run_child([*MUSICARK, "catalog", "export", "--format", "jsonl", "--archive",
                         str(WORK / f"archive-{tracks}")], consume=drain)
    return {**measure, "bytes": count[0], "records": count[1]}


def stage_serve(tracks: int, seconds: int, connections: int, workers: int) -> dict:
    """wrk against the JSON API (search and lookup, serve.py's mix) and the web search page,
    each on a fresh server (serve.py's `serve`: warmed 5 s, then measured) with the response
    cache off, so every request reaches the catalog; then the API with the default cache."""
    archive = WORK / f"archive-{tracks}"
    from musicark.archive import Archive

    Archive.open(archive).close()  # schema upgrades, before serving read-only
    api, web = [], []
    for kind, q in queries(archive, 2000, seed=3):
        if kind in ("isrc", "upc"):
            api.append("/api/v1/lookup?" + urllib.parse.urlencode({"id": q}))
        else:
            api.append("/api/v1/search?" + urllib.parse.urlencode({"q": q, "limit": 20}))
            web.append("/search?" + urllib.parse.urlencode({"q": q}))
    out: dict = {"workers": workers, "connections": connections, "seconds_each": seconds}
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        for name, paths, cache in (("api", api, 0), ("web", web, 0), ("api_cached", api, 60)):
            listing = Path(tmp, f"{name}.txt")
            listing.write_text("\n".join(paths) + "\n")
            script = Path(tmp, f"{name}.lua")
            script.write_text(LUA % listing)
            out[name] = {"paths": len(paths), "cache_seconds": cache,
                         **serve(archive, workers, cache, script, seconds, connections)}
    return out


# -- the run ------------------------------------------------------------------------------
def scratch_bytes() -> int:
    return sum(p.stat().st_size for p in WORK.rglob("*") if p.is_file())


def code_label() -> str:
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    return rev or "unknown"


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, results: dict, tracks: int) -> None:
    """Write this size's results into the file, under a lock, keeping what other runs of
    the same label (other sizes, run side by side) wrote there meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.parent, os.O_RDONLY)  # the directory itself: no lock file left over
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = load(path) or {k: v for k, v in results.items() if k != "sizes"}
        current.setdefault("sizes", {})[str(tracks)] = results["sizes"][str(tracks)]
        current["sizes"] = dict(sorted(current["sizes"].items(), key=lambda kv: int(kv[0])))
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(current, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        os.close(lock)


def load_average() -> float:
    return round(os.getloadavg()[0], 1)


def machine() -> dict:
    load1, load5, _ = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_at_start": [round(load1, 2), round(load5, 2)],
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "sqlite": sqlite3.sqlite_version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, nargs="+",
                        default=[1_000_000, 10_000_000, 50_000_000])
    parser.add_argument("--label", help="Results file name part (default: HEAD's short "
                        "commit): benchmarks/results/scale-LABEL.json.")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="Stages to run: the source and imports first, then in this order.")
    parser.add_argument("--force", action="store_true", help="Measure again what the results "
                        "file already has.")
    parser.add_argument("--per-kind", type=int, default=300, help="Search queries per kind.")
    parser.add_argument("--serve-seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--disk-budget-gib", type=float, default=35,
                        help="Scratch disk budget: the sqlite3 reference is skipped at sizes "
                        "whose database would not fit in what is left of it.")
    parser.add_argument("--synth-max", type=int, default=10_000_000,
                        help="Larger sources are copies of this size's, with new ids.")
    parser.add_argument("--compress-above", type=int, default=10_000_000,
                        help="Keep larger sources zstd-compressed (both imports read them so).")
    parser.add_argument("--delete-source-above", type=int, default=10_000_000,
                        help="Delete the synthetic CSV once imported above this size.")
    parser.add_argument("--clean", action="store_true",
                        help="Delete each size's archive once it is measured.")
    parser.add_argument("--child-search", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-import", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        print(json.dumps(child_import(*map(Path, args.child_import))))
        return
    if args.child_search:
        print(json.dumps(child_search(Path(args.child_search[0]), int(args.child_search[1]))))
        return
    for tool in ("sqlite3", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (make bench installs Debian's)")
    WORK.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale-{args.label or code_label()}.json"
    results = load(path)
    results.setdefault("benchmark", "scale")
    results.setdefault("commit", code_label())
    results.setdefault("machine", machine())
    sizes = results.setdefault("sizes", {})
    for tracks in sorted(args.tracks):
        done = sizes.setdefault(str(tracks), {})
        csv = source_path(tracks)
        archive_db = WORK / f"archive-{tracks}" / "catalog.sqlite"
        stages = {
            "source": lambda t: stage_source(t, args.synth_max, args.compress_above),
            "reference_import": lambda t: stage_reference_import(t, args.disk_budget_gib),
            "import": lambda t: stage_import(t),
            "sizes": lambda t: stage_sizes(t),
            "search": lambda t: stage_search(t, args.per_kind),
            "stats": lambda t: stage_stats(t),
            "plan": lambda t: stage_plan(t),
            "export": lambda t: stage_export(t),
            "serve": lambda t: stage_serve(t, args.serve_seconds, args.connections,
                                           args.workers),
        }
        # The source and imports first, then the rest in the order given (at 50 M, what
        # matters most first, in case the time runs out).
        order = [s for s in STAGES[:3] if s in args.stages] + \
            [s for s in args.stages if s not in STAGES[:3]]
        for stage in dict.fromkeys(order):
            if stage in done and not args.force:
                continue
            if stage in ("source", "reference_import", "import") and not csv.exists() \
                    and "import" in done and not args.force:
                continue
            if stage not in ("source", "reference_import", "import") \
                    and not archive_db.exists():
                print(f"{tracks:,}: {stage} skipped, no archive (run import)", flush=True)
                continue
            print(f"{time.strftime('%H:%M:%S')} {tracks:,} tracks: {stage} ...", flush=True)
            at, load_before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), load_average()
            measured = stages[stage](tracks)
            # The load average around the stage says how shared the machine was.
            done[stage] = {"at": at, "load": [load_before, load_average()], **measured}
            save(path, results, tracks)
            print(f"  {json.dumps(done[stage])[:400]}", flush=True)
            if stage == "import" and tracks > args.delete_source_above:
                csv.unlink(missing_ok=True)
        if args.clean:
            shutil.rmtree(WORK / f"archive-{tracks}", ignore_errors=True)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
