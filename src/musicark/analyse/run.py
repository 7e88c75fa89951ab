"""`musicark analyse`: every audio file of the store not yet analysed (or analysed by an
older method) is measured, never-analysed files first in the order they were ingested,
then the longest-analysed; work fans out through runner.fan_out (local processes or Dask),
and one writer commits results every second, so a killed run loses at most a second of
work and the next run goes on where it stopped. A file whose decoder kills its worker is
recorded as failed with that reason, as `verify store --decode` does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from musicark.analyse.measure import VERSION, Analysis, analyse_file
from musicark.analyse.record import record_analysis, update_albums
from musicark.archive import Archive
from musicark.errors import BadQuery
from musicark.ingest.store import Store
from musicark.runner import call_budget, decoder_failure, fan_out
from musicark.verify.decode import AUDIO_SQL
from musicark.verify.store import stamp

BATCH_FILES = 8  # files per worker call (each takes about a second)
COMMIT_SECONDS = 1.0

# Audio whose analysis is missing or older than the method: damaged bytes measure nothing
DUE = (f"{AUDIO_SQL} AND f.status != 'damaged' AND f.sha256 IS NOT NULL "
       f"AND (a.file_id IS NULL OR a.version < {VERSION})")


def analyse_batch(store_root: str, items: list[tuple[int, str]]) -> list[tuple[int, Analysis]]:
    """Worker task: analyse several store files; [(file id, Analysis)]."""
    store = Store(Path(store_root))
    return [(file_id, analyse_file(str(store.path_for(sha)))) for file_id, sha in items]


def _one_per_file(args: tuple) -> list[tuple]:
    store_root, items = args
    return [(store_root, [item]) for item in items]


def _crashed(args: tuple, why: str) -> list[tuple[int, Analysis]]:
    """A file whose analysis killed its worker, or ran past its time budget (a decoder that
    hangs), is one failed file with that reason, not the end of the run."""
    _, [(file_id, _sha)] = args
    return [(file_id, Analysis("failed", decoder_failure(why)))]


def _budget(args: tuple) -> float:
    """A batch's time budget (musicark.runner.call_budget): by the bytes it reads."""
    store_root, items = args
    store = Store(Path(store_root))
    total = 0
    for _file_id, sha in items:
        with contextlib.suppress(OSError, ValueError):  # gone, or not a digest: the
            total += os.stat(store.path_for(sha)).st_size  # analysis says so itself
    return call_budget(total)


def due_count(archive: Archive) -> int:
    return archive.conn.execute(f"SELECT count(*) FROM files f LEFT JOIN analyses a "
                                f"ON a.file_id = f.rowid WHERE {DUE}").fetchone()[0]


PAGE = 10_000


def _select(conn, only: list[int] | None, limit: int | None) -> int:
    """Number the due files in a temporary table (on disk: memory stays flat at 10 M
    files), never analysed first (by rowid: ingest order), then the oldest analyses."""
    where = DUE
    if only is not None:
        where += f" AND f.rowid IN ({','.join(str(int(i)) for i in only) or 'NULL'})"
    conn.execute("DROP TABLE IF EXISTS temp.analyse_todo")
    conn.execute("CREATE TEMP TABLE analyse_todo (n INTEGER PRIMARY KEY, file INTEGER NOT NULL, "
                 "sha256 TEXT NOT NULL)")
    conn.execute(f"INSERT INTO analyse_todo(file, sha256) SELECT f.rowid, f.sha256 FROM files f "
                 f"LEFT JOIN analyses a ON a.file_id = f.rowid WHERE {where} "
                 f"ORDER BY a.analysed_at IS NOT NULL, a.analysed_at, f.rowid"
                 + (f" LIMIT {int(limit)}" if limit is not None else ""))
    return conn.execute("SELECT count(*) FROM analyse_todo").fetchone()[0]


def _todo(conn) -> Iterator[tuple[int, str]]:
    last = 0
    while True:
        page = conn.execute("SELECT n, file, sha256 FROM analyse_todo WHERE n > ? ORDER BY n "
                            "LIMIT ?", (last, PAGE)).fetchall()
        if not page:
            return
        last = page[-1][0]
        for _, file_id, sha in page:
            yield file_id, sha


def analyse_archive(archive: Archive, *, workers: int | None = None,
                    dask: str | object | None = None, limit: int | None = None,
                    max_time: float | None = None, file_ids: list[int] | None = None,
                    progress: Callable[[int, int], None] = lambda done, total: None
                    ) -> dict[str, Any]:
    """Analyse the due files (module docstring); `file_ids` narrows the run to those files
    (ingest --analyse), `limit` and `max_time` make it a slice. Returns the run's summary."""
    if limit is not None and limit < 1:
        raise BadQuery("--limit must be at least 1")
    if max_time is not None and max_time <= 0:
        raise BadQuery("--max-time must be more than 0 seconds")
    conn = archive.conn
    began = time.monotonic()
    total = _select(conn, file_ids, limit)
    summary: dict[str, Any] = {"selected": total, "analysed": 0, "failed": 0, "flags": {},
                               "audio_seconds": 0.0, "albums": 0, "stopped_by": None}
    failures: list[dict] = []

    def calls() -> Iterator[tuple]:
        batch: list[tuple[int, str]] = []
        for item in _todo(conn):
            if max_time is not None and time.monotonic() - began >= max_time:
                summary["stopped_by"] = "max_time"
                return
            batch.append(item)
            if len(batch) >= BATCH_FILES:
                yield (str(archive.store_path), batch)
                batch = []
        if batch:
            yield (str(archive.store_path), batch)

    pending: list[tuple[int, Analysis]] = []
    last_commit = time.monotonic()
    # PyAV objects left for the garbage collector (a resampler's filter graph, with its
    # slice threads) are freed here, before any worker starts: a process forked from this
    # one would wait forever on threads it never had (workers come from the fork server
    # now, musicark.processes; this keeps a --workers 1 run's memory flat all the same)
    gc.collect()
    try:
        for results in fan_out(analyse_batch, calls(), workers=workers, dask=dask,
                               split=_one_per_file, on_crash=_crashed,
                               budget=_budget):
            pending.extend(results)
            for file_id, result in results:
                _count(summary, failures, file_id, result)
            progress(summary["analysed"] + summary["failed"], total)
            if time.monotonic() - last_commit >= COMMIT_SECONDS:
                summary["albums"] += _commit(conn, pending)
                pending, last_commit = [], time.monotonic()
    finally:
        summary["albums"] += _commit(conn, pending)
        conn.execute("DROP TABLE IF EXISTS temp.analyse_todo")
    summary["audio_seconds"] = round(summary["audio_seconds"], 3)
    summary["seconds"] = round(time.monotonic() - began, 3)
    summary["remaining"] = due_count(archive) if file_ids is None else \
        total - summary["analysed"] - summary["failed"]
    summary["failures"] = failures
    archive.record_event("analyse.run", "store", "ok" if not failures else "failures",
                         {k: summary[k] for k in ("analysed", "failed", "flags", "albums",
                                                  "stopped_by")})
    return summary


def _count(summary: dict, failures: list, file_id: int, result: Analysis) -> None:
    if result.outcome == "ok":
        summary["analysed"] += 1
        summary["audio_seconds"] += result.audio_s
        for flag in result.flags:
            summary["flags"][flag] = summary["flags"].get(flag, 0) + 1
    else:
        summary["failed"] += 1
        failures.append({"file": file_id, "reason": result.reason})


def _commit(conn, results: list[tuple[int, Analysis]]) -> int:
    if not results:
        return 0
    now = stamp()
    conn.execute("BEGIN IMMEDIATE")
    try:
        for file_id, result in results:
            if conn.execute("SELECT 1 FROM files WHERE rowid = ?", (file_id,)).fetchone():
                record_analysis(conn, file_id, result, now)
        albums = update_albums(conn, [f for f, r in results if r.outcome == "ok"], now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return albums


def analyse_digests(archive: Archive, sha256s: list[str], **options: Any) -> dict[str, Any]:
    """`ingest --analyse`: analyse the due files among these digests (the ones an ingest
    run just stored), with analyse_archive's options."""
    ids: list[int] = []
    unique = sorted(set(sha256s))
    for start in range(0, len(unique), 500):
        part = unique[start:start + 500]
        ids.extend(r[0] for r in archive.conn.execute(
            f"SELECT rowid FROM files WHERE sha256 IN ({','.join('?' * len(part))})", part))
    return analyse_archive(archive, file_ids=ids, **options)
