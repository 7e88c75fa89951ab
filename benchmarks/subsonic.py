"""Subsonic API benchmark (issue #13) on a 1 M-track archive where every track is a song.

The catalog is the synthetic 1 M one of benchmarks/run.py, copied; every track gets a ledger
row (a FLAC, MP3 or Opus file by rowid: no bytes behind them, which lists and searches never
read) and a few real files from the shared test material are ingested and linked for the
stream and transcode figures. Measured, against `musicark serve --workers N`:

- search3 and getAlbumList2 latency (p50/p99), one client in sequence and under wrk load,
  with musicark's own JSON search API (/api/v1/search, the same queries) as the reference;
- the client sync: search3 with an empty query, songCount=500, through every song (songs/s);
- stream time to first byte for originals;
- Opus transcode speed per core (audio seconds / wall seconds), against the ffmpeg CLI
  doing the same encode in the same run.

    python benchmarks/subsonic.py [--tracks 1000000] [--workers 2] [--seconds 20]
        [--cache-seconds 60 0] [--load-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import WORK, bench_import, queries  # noqa: E402
from serve import LUA, wrk  # noqa: E402

TESTDATA = Path(os.environ.get("MUSICARK_TESTDATA", "/work/shared/testdata"))
REAL = [TESTDATA / "audio" / "music" / "librosa-data" / name for name in (
    "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg",
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.hq.ogg",
    "Kevin_MacLeod_-_Vibe_Ace.ogg")] + [TESTDATA / "audio" / "music" / "fma" / "000002.mp3"]
FORMATS = [("flac", "flac", 900_000), ("mp3", "mp3", 320_000), ("ogg", "opus", 128_000)]
LIST_TYPES = ["alphabeticalByName", "alphabeticalByArtist", "newest", "frequent", "byYear",
              "random", "byGenre"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(tracks: int) -> tuple[Path, list[int]]:
    """A copy of the 1 M archive with every track a song; returns it and the real songs."""
    source = WORK / f"archive-{tracks}"
    if not (source / "catalog.sqlite").exists():
        bench_import(tracks)
    target = WORK / f"subsonic-{tracks}"
    done = target / ".songs-ready"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        from musicark.archive import Archive
        from musicark.ingest.pipeline import ingest

        with Archive.open(target) as archive:
            conn = archive.conn
            rows = conn.execute("SELECT rowid, coalesce(duration_ms, 200000) FROM tracks "
                                "ORDER BY rowid").fetchall()
            conn.execute("BEGIN")
            files, links = [], []
            for i, (rowid, duration) in enumerate(rows, 1):
                container, codec, bitrate = FORMATS[rowid % 3]
                files.append((i, hashlib.sha256(b"song%d" % rowid).hexdigest(),
                              duration * bitrate // 8000, container, codec, bitrate, 44100,
                              2, duration, "ok",
                              f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00Z"))
                links.append((rowid, i))
            conn.executemany(
                "INSERT INTO files (rowid, sha256, size, container, codec, bitrate, "
                "sample_rate, channels, duration_ms, status, added_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)", files)
            conn.executemany("INSERT INTO track_files VALUES (?, ?, 'isrc', 1.0)", links)
            conn.execute("COMMIT")
            ingest(archive, REAL, workers=1, match=False)
            real = [r for (r,) in conn.execute(
                "SELECT rowid FROM files WHERE sha256 IN ({})".format(",".join(
                    "?" * len(REAL))), [hashlib.sha256(p.read_bytes()).hexdigest()
                                        for p in REAL])]
            # Real files replace the placeholders of the first tracks (lossless-first wins
            # only among real files, so drop the placeholder links of those tracks).
            conn.execute("BEGIN")
            for track, file_rowid in zip(range(1, len(real) + 1), real, strict=True):
                conn.execute("DELETE FROM track_files WHERE track_rowid = ?", (track,))
                conn.execute("INSERT INTO track_files VALUES (?, ?, 'manual', 1.0)",
                             (track, file_rowid))
            conn.execute("COMMIT")
        done.write_text("ok")
    return target, list(range(1, len(REAL) + 1))


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(pick(0.5) * 1000, 2), "p99_ms": round(pick(0.99) * 1000, 2),
            "n": len(ordered)}


def timed_gets(client: httpx.Client, paths: list[str]) -> dict[str, float]:
    times = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        response.read()
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
        assert b'"failed"' not in response.content[:200], (path, response.content[:300])
    return percentiles(times)


def rest(method: str, **params) -> str:
    return f"/rest/{method}?" + urllib.parse.urlencode(
        {"u": "bench", "p": "x", "v": "1.16.1", "c": "bench", "f": "json", **params})


def workload(archive: Path, n: int) -> dict[str, list[str]]:
    rng = random.Random(5)
    texts = [q for kind, q in queries(archive, n) if kind in ("words", "prefix", "artist")]
    conn = sqlite3.connect(archive / "catalog.sqlite")
    genres = [g for (g,) in conn.execute(
        "SELECT genre FROM artist_genres GROUP BY genre ORDER BY count(*) DESC LIMIT 50")]
    lists = []
    for _ in range(n):
        kind = rng.choice(LIST_TYPES)
        params = {"type": kind, "size": 50, "offset": rng.choice([0, 0, 50, 500, 5000])}
        if kind == "byYear":
            low = rng.randint(1960, 2020)
            params.update(fromYear=low, toYear=low + rng.randint(0, 10))
        if kind == "byGenre":
            params["genre"] = rng.choice(genres) if genres else "rock"
        lists.append(rest("getAlbumList2", **params))
    return {"search3": [rest("search3", query=t, artistCount=10, albumCount=10, songCount=20)
                        for t in texts],
            "getAlbumList2": lists,
            "api_search (reference)": ["/api/v1/search?" + urllib.parse.urlencode(
                {"q": t, "limit": 20}) for t in texts]}


def sync(client: httpx.Client, page: int = 500) -> dict[str, float]:
    start, offset, songs, pages = time.perf_counter(), 0, 0, []
    while True:
        t0 = time.perf_counter()
        body = client.get(rest("search3", query="", artistCount=0, albumCount=0,
                               songCount=page, songOffset=offset)).json()
        pages.append(time.perf_counter() - t0)
        got = len(body["subsonic-response"]["searchResult3"].get("song", []))
        songs += got
        offset += page
        if got < page:
            break
    seconds = time.perf_counter() - start
    return {"songs": songs, "seconds": round(seconds, 1),
            "songs_per_s": round(songs / seconds), **percentiles(pages)}


def ttfb(url: str, ids: list[int], n: int = 200) -> dict[str, float]:
    times = []
    with httpx.Client(base_url=url) as client:
        for i in range(n):
            start = time.perf_counter()
            with client.stream("GET", rest("stream", id=f"tr-{ids[i % len(ids)]}")) as r:
                next(r.iter_raw())
                times.append(time.perf_counter() - start)
                assert r.status_code == 200 and r.headers["content-type"].startswith("audio/")
    return percentiles(times)


def transcode_speed() -> dict[str, float]:
    import av

    from musicark.serve.subsonic.transcode import transcode

    audio = ours = 0.0
    for path in REAL:
        with av.open(str(path)) as c:
            audio += c.duration / 1_000_000
        start = time.process_time()
        for _ in transcode(path, "opus", 128):
            pass
        ours += time.process_time() - start
    result = {"audio_s": round(audio, 1), "musicark_cpu_s": round(ours, 2),
              "musicark_x_realtime": round(audio / ours)}
    if shutil.which("ffmpeg"):
        start = os.times()
        for path in REAL:
            subprocess.run(["ffmpeg", "-v", "error", "-threads", "1", "-i", str(path), "-vn",
                            "-c:a", "libopus", "-b:a", "128k", "-f", "ogg", "-y", "/dev/null"],
                           check=True)
        end = os.times()
        cpu = (end.children_user - start.children_user) + (
            end.children_system - start.children_system)
        result.update(ffmpeg_cpu_s=round(cpu, 2), ffmpeg_x_realtime=round(audio / cpu),
                      ratio_vs_ffmpeg=round(ours / cpu, 2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--cache-seconds", type=float, nargs="+", default=[60.0],
                        help="server --cache-seconds values, one server each (0: no cache)")
    parser.add_argument("--load-only", action="store_true",
                        help="only the start and the wrk figures (no transcode, sequential "
                             "latencies, sync or time to first byte)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    archive, real = prepare(args.tracks)
    if not args.load_only:
        print(json.dumps({"transcode_opus": transcode_speed()}), flush=True)
    for cache_seconds in args.cache_seconds:
        print(json.dumps(measure(archive, real, args, cache_seconds), indent=1), flush=True)


def measure(archive: Path, real: list[int], args: argparse.Namespace, cache_seconds: float
            ) -> dict:
    out: dict = {"benchmark": "subsonic", "tracks": args.tracks, "workers": args.workers,
                 "cache_seconds": cache_seconds, "load_average": round(os.getloadavg()[0], 1)}
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "musicark", "serve", str(archive),
                               "--port", str(port), "--workers", str(args.workers),
                               "--cache-seconds", str(cache_seconds), "--open-subsonic"],
                              stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=url, timeout=300) as client:
            while True:
                try:
                    client.get("/rest/ping?u=x&f=json")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            start = time.perf_counter()
            for _ in range(4 * args.workers):  # every worker has built its snapshot once
                client.get(rest("getAlbumList2", type="newest", size=1))
            out["first_list_with_snapshot_builds_s"] = round(time.perf_counter() - start, 1)
            out["start_to_lists_s"] = round(time.perf_counter() - started, 1)
            paths = workload(archive, args.requests)
            if not args.load_only:
                for name, batch in paths.items():
                    timed_gets(client, batch[:50])  # warm
                    out[f"sequential {name}"] = timed_gets(client, batch)
                out["sync_search3_empty"] = sync(client)
        if not args.load_only:
            out["stream_ttfb_original"] = ttfb(url, real)
        if shutil.which("wrk"):
            for name in ("search3", "getAlbumList2", "api_search (reference)"):
                listing = WORK / "subsonic-paths.txt"
                listing.write_text("\n".join(paths[name]) + "\n")
                script = WORK / "subsonic-load.lua"
                script.write_text(LUA % listing)
                wrk(url, script, 3, args.connections)
                out[f"wrk c={args.connections} {name}"] = wrk(
                    url, script, args.seconds, args.connections, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return out


if __name__ == "__main__":
    main()
