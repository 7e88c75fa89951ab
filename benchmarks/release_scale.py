"""Release at scale (issue #16): `release create` over N small payload files, phase by phase,
against references run in the same process on the same tree.

    python benchmarks/release_scale.py setup --files 100000 [--dir /work/bench-release]
    python benchmarks/release_scale.py run [--dir ...] [--repeat 1] [--profile]
    python benchmarks/release_scale.py hash [--dir ...] [--workers 2]

`setup` builds an archive without decoding any audio: a synthetic catalog of N tracks
(imported with `catalog import`, so names, albums and artists have the synthetic catalog's
realistic spread), N small files of distinct bytes (1-4 KB) written straight into the
content-addressed store, one ledger row and one `track_files` match per file, in bulk SQL,
and a plan that keeps every track as its original.

`run` times `release create` with its phase timings (select, layout, link, bag, hash,
torrent, record, snapshot), then the references on the release it made: `cp -al` of the
shards (the hardlink tree), libtorrent's `create_torrent` + `set_piece_hashes` and
`mktorrent` over the biggest shard; the ratios are taken per file.

`hash` measures hashing throughput per core on large files (what decides the time for
300 TB): musicark's one-pass v1 + v2 hashing against `openssl speed` SHA-1 + SHA-256.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(os.environ.get("MUSICARK_BENCH_DIR", "/work/bench-release"))


def setup(base: Path, files: int, seed: int = 16) -> dict:
    from musicark.archive import Archive
    from musicark.catalog import import_source
    from musicark.synth import write_catalog

    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    timings = {}
    t = time.perf_counter()
    write_catalog(base / "catalog.csv", files, seed=seed)
    archive = Archive.create(base / "archive")
    import_source(archive, "table", base / "catalog.csv")
    (base / "catalog.csv").unlink()
    timings["catalog_s"] = time.perf_counter() - t

    t = time.perf_counter()
    conn = archive.conn
    store = archive.store_path / "sha256"
    rng = random.Random(seed)
    made: set[str] = set()
    rows = []
    track_ids = [r for (r,) in conn.execute("SELECT rowid FROM tracks ORDER BY rowid")]
    for i, track in enumerate(track_ids):
        # Distinct bytes: the index up front, then seeded filler (1-4 KB in all).
        data = i.to_bytes(8, "little") + rng.randbytes(rng.randrange(1024, 4096))
        sha = hashlib.sha256(data).hexdigest()
        folder = store / sha[:2] / sha[2:4]
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        with open(folder / sha, "wb") as fh:
            fh.write(data)
        rows.append((sha, len(data), track))
    timings["store_s"] = time.perf_counter() - t

    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.execute("CREATE TEMP TABLE bench_files (sha TEXT, size INTEGER, track INTEGER)")
    conn.executemany("INSERT INTO bench_files VALUES (?,?,?)", rows)
    conn.execute(
        "INSERT INTO files(sha256, size, container, codec, bitrate, sample_rate, channels, "
        "duration_ms, licence, provenance, status, added_at) "
        "SELECT sha, size, 'flac', 'flac', 900000, 44100, 2, 200000, 'CC0-1.0', "
        "'benchmark', 'ok', '2026-01-01T00:00:00Z' FROM bench_files ORDER BY track")
    conn.execute(
        "INSERT INTO track_files(track_rowid, file_rowid, method, score) "
        "SELECT b.track, f.rowid, 'isrc', 1.0 FROM bench_files b JOIN files f ON f.sha256 = b.sha")
    plan = conn.execute(
        "INSERT INTO plans(created_at, budget_bytes, options, summary) "
        "VALUES ('2026-01-01T00:00:00Z', 1e15, '{}', '{}')").lastrowid
    conn.execute(
        "INSERT INTO plan_items(plan_id, track_rowid, tier, expected_listens, bytes) "
        "SELECT ?, track, 'original', NULL, size FROM bench_files", (plan,))
    conn.execute("DROP TABLE temp.bench_files")
    conn.execute("COMMIT")
    archive.close()
    timings["ledger_s"] = time.perf_counter() - t
    return {"files": len(rows), "plan": plan, **{k: round(v, 2) for k, v in timings.items()}}


def _timed(cmd: list[str], **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def run(base: Path, *, repeat: int, profile: bool, dask: str | None = None,
        max_files: int = 60_000, references: bool = True) -> dict:
    from musicark.archive import Archive
    from musicark.release import ReleaseOptions, create_release

    archive_path = base / "archive"
    results: dict = {"runs": []}
    for n in range(repeat):
        with Archive.open(archive_path) as archive:
            _forget_releases(archive)
            options = ReleaseOptions(max_files=max_files, dask=dask)
            profiler = cProfile.Profile() if profile and n == 0 else None
            t, cpu = time.perf_counter(), os.times()
            if profiler:
                profiler.enable()
            report = create_release(archive, "bench", options)
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - t
            after = os.times()
            cpu_s = sum(after[:4]) - sum(cpu[:4])  # user + system, with worker processes
        files = report.selection["files"]
        results["runs"].append({"seconds": round(seconds, 2), "cpu_s": round(cpu_s, 2),
                                "files": files, "files_per_s": round(files / seconds),
                                "files_per_cpu_s": round(files / cpu_s),
                                "phases": {k: round(v, 2) for k, v in report.phases.items()}})
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").dump_stats(str(base / "release.prof"))
            out = base / "release.prof.txt"
            with open(out, "w") as fh:
                pstats.Stats(str(base / "release.prof"), stream=fh).sort_stats(
                    "tottime").print_stats(40)
            results["profile"] = str(out)

        print(json.dumps(results["runs"][-1]), file=sys.stderr, flush=True)
        if references:
            results["runs"][-1].update(_references(base, archive_path / "releases" / "bench"))
            print(json.dumps(results["runs"][-1]), file=sys.stderr, flush=True)
    return results


def _references(base: Path, release: Path) -> dict:
    """`cp -al` of every shard, then libtorrent and mktorrent over the biggest shard next to
    musicark's own hashing + torrent of that shard (files from the page cache in all three:
    musicark's release run just read them)."""
    import libtorrent as lt

    from musicark.release.hashing import hash_files
    from musicark.release.metainfo import build_torrent, libtorrent_reference

    shards = release / "shards"
    copy = base / "cp-al"
    shutil.rmtree(copy, ignore_errors=True)
    cp_s = _timed(["cp", "-al", str(shards), str(copy)])
    shutil.rmtree(copy, ignore_errors=True)
    listing = json.loads((release / "torrents.json").read_text())
    top = max((t for t in listing["torrents"] if not t["metadata"]),
              key=lambda t: t["num_files"])
    biggest = shards / top["name"]
    data = (release / top["torrent"]).read_bytes()
    info = lt.torrent_info(lt.bdecode(data))
    fs = info.layout()
    rels = [tuple(fs.file_path(i).split(os.sep)[1:]) for i in range(fs.num_files())
            if not fs.file_flags(i) & lt.file_storage.flag_pad_file]
    piece = info.piece_length()
    t = time.perf_counter()
    hashed = list(zip(rels, hash_files([biggest.joinpath(*r) for r in rels], piece),
                      strict=True))
    ours = build_torrent(biggest.name, hashed, piece)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    try:
        ct = libtorrent_reference(biggest, rels, piece)
        lt.set_piece_hashes(ct, str(biggest.parent))
        ref = lt.torrent_info(ct.generate()).info_hashes()
        same = (str(ref.v1), str(ref.v2)) == (ours.btih, ours.btmh)
    except RuntimeError as exc:  # recorded, not fatal: the other references still run
        same = f"libtorrent failed: {exc}"
    lt_s = time.perf_counter() - t
    torrent = base / "mk.torrent"
    torrent.unlink(missing_ok=True)
    # mktorrent takes pieces of 32 KiB and up: v1 hashing of the same bytes, bigger pieces.
    mk_s = _timed(["mktorrent", "-t", str(os.cpu_count() or 1), "-l",
                   str(max(15, piece.bit_length() - 1)), "-o", str(torrent), str(biggest)])
    torrent.unlink(missing_ok=True)
    return {"cp_al_s": round(cp_s, 2), "shard_files": len(rels), "shard_torrent_bytes": len(data),
            "musicark_shard_s": round(ours_s, 2), "libtorrent_shard_s": round(lt_s, 2),
            "mktorrent_v1_shard_s": round(mk_s, 2),
            "same_infohashes_as_libtorrent": same, "same_as_release": ours.btih == top["btih"]}


def hash_rate(base: Path, *, gb: float = 0.5, file_mb: float = 5.0) -> dict:
    """Release hashing (v1 pieces + v2 tree, one pass, mmap) per CPU second of one process,
    next to `openssl speed` for SHA-1 and SHA-256 on one core (both per CPU second, so the
    figure holds on a shared machine); files are in the page cache."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from musicark.release.hashing import _hash_batch
    from musicark.release.shards import auto_piece_length
    from release import openssl_limit

    folder = base / "hash-rate"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    size = int(file_mb * 1e6)
    paths = []
    for i in range(max(1, int(gb * 1e9) // size)):
        path = folder / f"{i:04d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    piece = auto_piece_length([size] * len(paths))
    _hash_batch(paths, piece, False)  # warm the page cache
    rates = []
    for _ in range(3):
        cpu = time.process_time()
        _hash_batch(paths, piece, False)
        rates.append(size * len(paths) / (time.process_time() - cpu) / 1e9)
    shutil.rmtree(folder, ignore_errors=True)
    limit = openssl_limit()
    one_core = limit["limit_GBps"] / (os.cpu_count() or 1)
    rate = sorted(rates)[1]
    return {"piece_length": piece, "musicark_GB_per_cpu_s": round(rate, 3),
            "openssl_sha1_plus_sha256_GB_per_core_s": round(one_core, 3),
            "share_of_openssl": round(rate / one_core, 3)}


def _forget_releases(archive) -> None:
    """Drop earlier benchmark releases (rows and directory) so each run builds everything."""
    conn = archive.conn
    conn.execute("BEGIN")
    for table in ("release_tracks", "release_files", "torrents", "releases"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("COMMIT")
    shutil.rmtree(archive.path / "releases", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["setup", "run", "refs", "hash"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-files", type=int, default=60_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dask", default=None)
    parser.add_argument("--no-references", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if args.what == "setup":
        print(json.dumps(setup(args.dir, args.files), indent=1))
    elif args.what == "run":
        print(json.dumps(run(args.dir, repeat=args.repeat, profile=args.profile,
                             dask=args.dask, max_files=args.max_files,
                             references=not args.no_references), indent=1))
    elif args.what == "refs":  # the references alone, on the release `run` left
        print(json.dumps(_references(args.dir, args.dir / "archive" / "releases" / "bench"),
                         indent=1))
    else:
        print(json.dumps(hash_rate(args.dir), indent=1))


if __name__ == "__main__":
    main()
