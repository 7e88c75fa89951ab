"""Listens benchmark (issue #14): import speed from a ListenBrainz Parquet dump and a JSONL
export, each against pyarrow reading the same file in the same run (no matching), and
matching listened items against a catalog, measured and projected.

The files are synthetic but shaped like the real ones (the dump's schema and column types;
the export's nested listens with mbid_mapping and additional_info, ~1 KB a line), with a
Zipf-like choice of tracks so that distinct tracks and users repeat as in real listening.

    python benchmarks/listens.py --parquet 5000000 --jsonl 1000000 --catalog 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

START = 1_640_995_200  # 2022-01-01
SPAN = 2 * 365 * 86_400


def vocabulary(tracks: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    words = np.array(["night", "love", "blue", "song", "river", "light", "dream", "fire",
                      "heart", "road", "city", "rain", "gold", "moon", "sea", "dance"])
    pick = lambda k: [" ".join(w) for w in words[rng.integers(0, len(words), (tracks, k))]]  # noqa: E731
    return {
        "title": np.array([f"{t} {i}" for i, t in enumerate(pick(2))], dtype=object),
        "artist": np.array([f"The {a} {i % 9973}" for i, a in enumerate(pick(1))],
                           dtype=object),
        "album": np.array(pick(2), dtype=object),
        "mbid": np.array([str(uuid.UUID(int=int(x))) for x in
                          rng.integers(0, 2**63, tracks, dtype=np.int64)], dtype=object),
    }


def zipf_choice(n: int, tracks: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.zipf(1.3, n) - 1) % tracks


def write_parquet(path: Path, n: int, tracks: int, rng: np.random.Generator) -> None:
    vocab = vocabulary(tracks, rng)
    writer = None
    chunk = 1_000_000
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        pick = zipf_choice(m, tracks, rng)
        ts = np.sort(rng.integers(START, START + SPAN, m)).astype("datetime64[s]")
        mapped = rng.random(m) < 0.7
        table = pa.table({
            "listened_at": pa.array(ts.astype("datetime64[ns]")),
            "created": pa.array(ts.astype("datetime64[ns]")),
            "user_id": pa.array(rng.integers(1, 20_000, m)),
            "recording_msid": pa.array(vocab["mbid"][(pick * 7919) % tracks]),
            "artist_name": pa.array(vocab["artist"][pick]),
            "artist_credit_id": pa.array(pick.astype(np.int64)),
            "release_name": pa.array(vocab["album"][pick]),
            "release_mbid": pa.array(np.where(mapped, vocab["mbid"][(pick * 31) % tracks],
                                              None)),
            "recording_name": pa.array(vocab["title"][pick]),
            "recording_mbid": pa.array(np.where(mapped, vocab["mbid"][pick], None)),
        })
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=1 << 20)
    writer.close()


def write_jsonl(path: Path, n: int, tracks: int, rng: np.random.Generator) -> None:
    vocab = vocabulary(tracks, rng)
    pick = zipf_choice(n, tracks, rng)
    ts = np.sort(rng.integers(START, START + SPAN, n))
    with path.open("wb") as fh:
        for i in range(n):
            t = int(pick[i])
            fh.write(orjson.dumps({
                "inserted_at": float(ts[i]) + 0.5, "listened_at": int(ts[i]),
                "track_metadata": {
                    "track_name": vocab["title"][t], "artist_name": vocab["artist"][t],
                    "release_name": vocab["album"][t],
                    "mbid_mapping": {"caa_id": 1, "recording_mbid": vocab["mbid"][t],
                                     "release_mbid": vocab["mbid"][(t * 31) % tracks],
                                     "artist_mbids": [vocab["mbid"][(t * 7) % tracks]],
                                     "recording_name": vocab["title"][t]},
                    "recording_msid": vocab["mbid"][(t * 7919) % tracks],
                    "additional_info": {
                        "duration_ms": 180_000 + t % 120_000, "isrc": f"QZ{t % 1000:03d}"
                        f"A{t % 100:02d}{t % 100000:05d}", "music_service": "spotify.com",
                        "spotify_id": f"https://open.spotify.com/track/{t:022d}",
                        "submission_client": "listenbrainz", "tracknumber": t % 12 + 1}}})
                + b"\n")


def timed(fn, cpu: list | None = None) -> float:
    """Wall seconds of fn(); with `cpu`, its process CPU seconds (all threads) appended."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start


def import_speed(kind: str, path: Path, n: int, root: Path) -> dict:
    from musicark.archive import Archive
    from musicark.listens.store import import_listens

    if kind == "parquet":
        columns = ["listened_at", "user_id", "artist_name", "recording_name", "release_name",
                   "recording_mbid"]
        reference = timed(lambda: pq.read_table(path, columns=columns), ref_cpu := [])
        reference_name = "pyarrow.parquet.read_table (the 6 columns used)"
    else:
        reference = timed(lambda: pajson.read_json(path), ref_cpu := [])
        reference_name = "pyarrow.json.read_json"
    archive = Archive.create(root / f"archive-{kind}")
    report = {}
    seconds = timed(lambda: report.update(import_listens(archive, "listenbrainz", [path],
                                                          match=False)), cpu := [])
    items = archive.conn.execute("SELECT count(*) FROM listen_keys").fetchone()[0]
    cells = archive.conn.execute("SELECT count(*) FROM listen_counts").fetchone()[0]
    again = timed(lambda: import_listens(archive, "listenbrainz", [path], match=False))
    sizes = dict(archive.conn.execute(
        "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'listen%' GROUP BY name"))
    archive.close()
    return {"benchmark": f"listens import {kind}", "listens": n,
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "seconds": round(seconds, 2), "listens_per_s": round(n / seconds),
            "reference": reference_name, "reference_seconds": round(reference, 2),
            "ratio_to_reference": round(seconds / reference, 2),
            "cpu_seconds": round(cpu[0], 2), "reference_cpu_seconds": round(ref_cpu[0], 2),
            "listens_per_cpu_s": round(n / cpu[0]),
            "load_average": round(os.getloadavg()[0], 1),
            "counted": report["listens"], "duplicates": report["duplicates"],
            "items": items, "item_months": cells, "reimport_seconds": round(again, 2),
            "bytes_per_item_month": round(sizes["listen_counts"] / cells, 1),
            "identity_bytes_per_listen": round(sizes["listen_seen"] / report["listens"], 2),
            "item_bytes": round((sizes["listen_keys"] + sizes.get("sqlite_autoindex_"
                                 "listen_keys_1", 0)) / items, 1)}


def match_speed(catalog_tracks: int, items: int, root: Path, workers: int = 1) -> list[dict]:
    """Match `items` listened items against a synthetic catalog: once by ISRC (identifier
    path: index lookups), once by tags only (70 % catalog titles and artists in another
    letter case with punctuation added, 30 % unknown: the fuzzy path, the worst case)."""
    import csv

    from musicark.archive import Archive
    from musicark.catalog import import_source
    from musicark.listens.match import match_listens
    from musicark.listens.store import import_listens
    from musicark.synth import write_catalog

    archive = Archive.create(root / f"archive-match-{catalog_tracks}")
    catalog = root / "catalog.csv"
    write_catalog(catalog, catalog_tracks, seed=5)
    import_source(archive, "table", catalog)
    rows = archive.conn.execute(
        "SELECT t.name, t.isrc, (SELECT a.name FROM track_artists ta JOIN artists a ON "
        "a.rowid = ta.artist_rowid WHERE ta.track_rowid = t.rowid AND ta.position = 0) "
        "FROM tracks t WHERE t.isrc IS NOT NULL ORDER BY random() LIMIT ?",
        (items,)).fetchall()
    rng = np.random.default_rng(3)
    results = []
    for kind in ("isrc", "fuzzy"):
        plays = root / f"plays-{kind}.csv"
        with plays.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["ts", "artist", "title", "isrc"])
            for i, (title, isrc, artist) in enumerate(rows):
                if kind == "isrc":
                    w.writerow([START + i, f"{artist} (live)", f"{title} [remaster]", isrc])
                elif rng.random() < 0.3:
                    w.writerow([START + i, f"Nobody {i}", f"Unknown song {i}", ""])
                else:
                    w.writerow([START + i, (artist or "").upper(), (title or "") + "!", ""])
        import_listens(archive, "table", [plays], source=kind, match=False)
        report = {}
        seconds = timed(lambda: report.update(match_listens(archive,  # noqa: B023
                                                            workers=workers)))
        results.append({"benchmark": f"listens match ({kind})", "workers": workers,
                        "catalog_tracks": catalog_tracks, "items": len(rows),
                        "seconds": round(seconds, 2), "items_per_s": round(len(rows) / seconds),
                        "matched": report["matched"], "unmatched": report["unmatched"],
                        "ambiguous": report["ambiguous"],
                        "ms_per_item": round(seconds / len(rows) * 1000, 3),
                        "load_average": round(os.getloadavg()[0], 1)})
    archive.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet", type=int, default=5_000_000)
    parser.add_argument("--jsonl", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--catalog", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--match-workers", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.parquet:
            path = root / "dump.parquet"
            write_parquet(path, args.parquet, args.tracks, rng)
            print(json.dumps(import_speed("parquet", path, args.parquet, root)), flush=True)
        if args.jsonl:
            path = root / "listens.jsonl"
            write_jsonl(path, args.jsonl, args.tracks, rng)
            print(json.dumps(import_speed("jsonl", path, args.jsonl, root)), flush=True)
        for size in args.catalog:
            for result in match_speed(size, args.items, root, args.match_workers):
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
