"""`verify store`: every ledger file exists, has its size, and hashes to its SHA-256.

A scrub in the spirit of ZFS: files verified longest ago (never-verified first) are read
first; `older_than`, `sample` and the byte and time budgets make each run a slice of the
store; every outcome is committed in small batches, so a killed run loses at most a second of
work, and the next run with the same options resumes its scrub (files verified since that
scrub started are not read again). Reading fans out to worker processes or a Dask cluster.

With `decode` (the slow speed, `verify store --decode`), each audio file whose bytes are good
is also decoded to its end (musicark.verify.decode), and the rotation follows the decode
checks: audio files decode-checked longest ago first, other files by their last SHA-256 check.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from musicark.archive import Archive, utc_now
from musicark.ingest.store import Store
from musicark.runner import call_budget, decoder_failure, fan_out
from musicark.trust import is_digest
from musicark.verify.damage import record_outcome
from musicark.verify.decode import AUDIO_SQL, UNDECODABLE, Decoded, decode_file, record_decode
from musicark.verify.report import (
    CHECKSUM,
    INVALID,
    MISSING,
    SIZE,
    UNREADABLE,
    WARNING,
    Report,
)

BATCH_BYTES = 64 << 20  # files per worker task up to this many bytes
BATCH_FILES = 256
# A decode batch is smaller: decoding a file costs far more than a task's round trip, and a
# batch's time budget (musicark.runner) grows with its bytes, not its files.
DECODE_BATCH_FILES = 16
COMMIT_SECONDS = 1.0
SLICE = 8 << 20


@dataclass(frozen=True)
class ScrubOptions:
    older_than: float | None = None  # seconds: only files not verified for this long
    sample: float | None = None  # share of the ledger per run, longest unverified first
    max_bytes: int | None = None  # budgets: stop after this many bytes or seconds
    max_time: float | None = None
    walk: bool = True  # also look for orphans, .part leftovers and writable files
    decode: bool = False  # also decode every audio file to its end (the slow speed)


def place(store: Store, sha256: str) -> str:
    """Where a ledger row's file is in the store, as reports show it (a row whose sha256
    is not a digest, left by a hostile release, names no store file: never a path)."""
    return str(store.path_for(sha256)) if is_digest(sha256) else f"ledger row {sha256!r:.80}"


def check_file(path: str, sha256: str, size: int | None) -> tuple[str | None, str | None, int]:
    """(kind, detail, bytes read) for one store file; kind None means good."""
    if not is_digest(sha256):
        return INVALID, "its sha256 is not a digest (64 lowercase hex): no file is read", 0
    try:
        with open(path, "rb") as fh:
            actual = os.fstat(fh.fileno()).st_size
            if size is not None and actual != size:
                return SIZE, f"{actual:,} bytes on disk, the ledger says {size:,}", 0
            digest = hashlib.sha256()
            if actual:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    mapped.madvise(mmap.MADV_SEQUENTIAL)
                    view = memoryview(mapped)
                    for start in range(0, actual, SLICE):
                        digest.update(view[start:start + SLICE])
                    view.release()
    except FileNotFoundError:
        return MISSING, "the store file is missing", 0
    except OSError as exc:
        return UNREADABLE, f"cannot read: {exc.strerror or exc}", 0
    got = digest.hexdigest()
    if got != sha256:
        return CHECKSUM, f"SHA-256 is {got}", actual
    return None, None, actual


def check_batch(store_root: str, items: list[tuple[str, int | None]]) -> list[tuple]:
    """Worker task: check several store files; [(sha256, kind, detail, bytes read)]."""
    store = Store(Path(store_root))
    return [(sha, *check_file(place(store, sha), sha, size)) for sha, size in items]


def check_decode_batch(store_root: str, items: list[tuple[str, int | None, bool]]
                       ) -> list[tuple]:
    """Worker task of a decode run: the SHA-256 check, then (audio files whose bytes are
    good) the full decode; [(sha256, kind, detail, bytes read, Decoded or None)]."""
    store = Store(Path(store_root))
    out = []
    for sha, size, audio in items:
        path = place(store, sha)
        kind, detail, nbytes = check_file(path, sha, size)
        out.append((sha, kind, detail, nbytes,
                    decode_file(path) if audio and kind is None else None))
    return out


def _one_per_file(args: tuple) -> list[tuple]:
    store_root, items = args
    return [(store_root, [item]) for item in items]


def _decoder_crashed(args: tuple, why: str) -> list[tuple]:
    """A file whose decode killed its worker (a decoder crash on crafted input) or ran past
    its time budget (a decoder that hangs) is undecodable with that reason; its bytes are
    checked here, where nothing is decoded."""
    store_root, [(sha, size, audio)] = args
    path = place(Store(Path(store_root)), sha)
    kind, detail, nbytes = check_file(path, sha, size)
    decoded = (Decoded(UNDECODABLE, decoder_failure(why), 0, 0.0)
               if audio and kind is None else None)
    return [(sha, kind, detail, nbytes, decoded)]


def _budget(args: tuple) -> float:
    """A decode batch's time budget (musicark.runner.call_budget): by the bytes it reads."""
    return call_budget(sum(size or 0 for _, size, _ in args[1]))


def stamp(at: datetime | None = None) -> str:
    """A UTC timestamp with microseconds: scrubs compare `verified_at` with their own start,
    and two runs may start within the same second."""
    at = at or datetime.now(UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shift(started: str, seconds: float) -> str:
    return stamp(datetime.fromisoformat(started.replace("Z", "+00:00"))
                 - timedelta(seconds=seconds))


def _start_run(archive: Archive, options: ScrubOptions) -> tuple[int, str, bool]:
    """The scrub this run belongs to: the last unfinished one with the same selection, or a
    new one. Returns (id, started_at, resumed)."""
    conn = archive.conn
    selection = {"older_than": options.older_than, "sample": options.sample}
    if options.decode:  # a decode scrub is its own rotation (keys of plain scrubs unchanged)
        selection["decode"] = True
    key = json.dumps(selection)
    row = conn.execute("SELECT id, started_at, options, finished_at FROM fixity_runs "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    if row and row[3] is None and row[2] == key:
        return row[0], row[1], True
    now = stamp()
    target = None
    if options.sample is not None:
        total = conn.execute("SELECT count(*) FROM files WHERE sha256 IS NOT NULL "
                             "AND status != 'absent'").fetchone()[0]
        target = math.ceil(total * options.sample)
    run = conn.execute("INSERT INTO fixity_runs(started_at, options, target) VALUES (?, ?, ?)",
                       (now, key, target)).lastrowid
    return run, now, False


# When a file was last checked, for the rotation. A decode run goes by the decode check for
# audio files whose bytes were good when last read (bytes found damaged are not decoded: they
# count as checked when their SHA-256 was), by the SHA-256 check for every other file.
DUE_DECODE = (f"CASE WHEN {AUDIO_SQL} AND coalesce(f.fixity, 'ok') = 'ok' "
              "THEN d.checked_at ELSE f.verified_at END")
FROM_DECODE = "files f LEFT JOIN decode_checks d ON d.file_id = f.rowid"


def _select(archive: Archive, options: ScrubOptions, run: int, started: str) -> tuple[int, int]:
    """Number the files this run reads, in scrub order, in a temporary table (on disk:
    memory stays flat at 10 M files); returns (files, bytes)."""
    conn = archive.conn
    due, source, audio = ((DUE_DECODE, FROM_DECODE, AUDIO_SQL) if options.decode
                          else ("f.verified_at", "files f", "0"))
    where = ["f.sha256 IS NOT NULL", "f.status != 'absent'",  # absent: known, not held here
             f"({due} IS NULL OR {due} < :started)"]
    params: dict = {"started": started}
    if options.older_than is not None:
        where.append(f"({due} IS NULL OR {due} < :cutoff)")
        params["cutoff"] = _shift(started, options.older_than)
    limit = ""
    if options.sample is not None:
        target = conn.execute("SELECT target FROM fixity_runs WHERE id = ?", (run,)).fetchone()[0]
        done = conn.execute(f"SELECT count(*) FROM {source} WHERE {due} >= ?",
                            (started,)).fetchone()[0]
        limit = f" LIMIT {max(0, int(target) - done)}"
    conn.execute("DROP TABLE IF EXISTS temp.scrub_todo")
    conn.execute("CREATE TEMP TABLE scrub_todo (n INTEGER PRIMARY KEY, file INTEGER NOT NULL, "
                 "audio INTEGER NOT NULL)")
    conn.execute(
        f"INSERT INTO scrub_todo(file, audio) SELECT f.rowid, {audio} FROM {source} "
        f"WHERE {' AND '.join(where)} ORDER BY {due} IS NOT NULL, {due}, f.rowid{limit}",
        params)
    count, nbytes = conn.execute("SELECT count(*), coalesce(sum(f.size), 0) FROM scrub_todo t "
                                 "JOIN files f ON f.rowid = t.file").fetchone()
    return count, nbytes


PAGE = 10_000


def _todo(conn) -> Iterator[tuple[str, int | None, bool]]:
    last = 0
    while True:
        page = conn.execute("SELECT t.n, f.sha256, f.size, t.audio FROM scrub_todo t "
                            "JOIN files f ON f.rowid = t.file WHERE t.n > ? ORDER BY t.n "
                            "LIMIT ?", (last, PAGE)).fetchall()
        if not page:
            return
        last = page[-1][0]
        for _, sha, size, audio in page:
            yield sha, size, bool(audio)


def verify_store(archive: Archive, options: ScrubOptions | None = None, *,
                 workers: int | None = None, dask: str | object | None = None,
                 progress: Callable[[int, int], None] = lambda done, total: None) -> Report:
    """Scrub the store (see the module docstring); damage flips a file's status to 'damaged'
    and records a "fixity" event. The report lists every damaged file by path, and with
    `options.decode` every undecodable audio file with the decoder's reason."""
    options = options or ScrubOptions()
    conn = archive.conn
    store = Store(archive.store_path)
    report = Report("store")
    began = time.monotonic()
    run, started, resumed = _start_run(archive, options)
    selected, total = _select(archive, options, run, started)
    if options.max_bytes is not None:
        total = min(total, options.max_bytes)
    report.notes.update({"run": run, "resumed": resumed, "selected": selected})
    decoding = {"decoded": 0, "undecodable": 0, "audio_seconds": 0.0, "decode_seconds": 0.0}
    submitted = {"bytes": 0, "stopped": None}

    most = DECODE_BATCH_FILES if options.decode else BATCH_FILES

    def calls() -> Iterator[tuple]:
        batch: list[tuple] = []
        nbytes = 0
        for sha, size, audio in _todo(conn):
            if options.max_bytes is not None and submitted["bytes"] >= options.max_bytes:
                submitted["stopped"] = "max_bytes"
                break
            if options.max_time is not None and time.monotonic() - began >= options.max_time:
                submitted["stopped"] = "max_time"
                break
            batch.append((sha, size, audio) if options.decode else (sha, size))
            nbytes += size or 0
            submitted["bytes"] += size or 0
            if nbytes >= BATCH_BYTES or len(batch) >= most:
                yield (str(archive.store_path), batch)
                batch, nbytes = [], 0
        if batch:
            yield (str(archive.store_path), batch)

    pending: list[tuple] = []
    last_commit = time.monotonic()
    done_bytes = 0
    try:
        crash = {"split": _one_per_file, "on_crash": _decoder_crashed,
                 "budget": _budget} if options.decode else {}
        worker = check_decode_batch if options.decode else check_batch
        for results in fan_out(worker, calls(), workers=workers, dask=dask, **crash):
            pending.extend(results)
            for sha, kind, detail, nbytes, *decoded in results:
                report.files += 1
                report.bytes += nbytes
                done_bytes += nbytes
                if kind is not None:
                    report.add("store", place(store, sha), kind, detail, sha)
                if decoded and decoded[0] is not None:
                    _count_decode(report, decoding, place(store, sha), sha, decoded[0])
            progress(min(done_bytes, total) if total else done_bytes, total)
            if time.monotonic() - last_commit >= COMMIT_SECONDS:
                _commit(conn, pending)
                pending, last_commit = [], time.monotonic()
    finally:
        _commit(conn, pending)
        conn.execute("DROP TABLE IF EXISTS temp.scrub_todo")
    finished = submitted["stopped"] is None
    if finished:
        conn.execute("UPDATE fixity_runs SET finished_at = ? WHERE id = ?", (utc_now(), run))
    report.notes["finished"] = finished
    report.notes["stopped_by"] = submitted["stopped"]
    report.notes["remaining"] = selected - report.files
    if options.decode:
        decoding["audio_seconds"] = round(decoding["audio_seconds"], 3)
        decoding["decode_seconds"] = round(decoding["decode_seconds"], 3)
        report.notes.update(decoding)
    if options.walk:
        _walk(archive, store, report)
    report.seconds = time.monotonic() - began
    archive.record_event("fixity.run", "store", "damage" if report.damaged else "ok",
                         {"run": run, "files": report.files, "bytes": report.bytes,
                          "damage": len(report.damaged), "finished": finished,
                          **({"decode": decoding} if options.decode else {})})
    return report


def _count_decode(report: Report, decoding: dict, path: str, sha: str,
                  decoded: Decoded) -> None:
    decoding["decoded"] += 1
    decoding["audio_seconds"] += decoded.audio_ms / 1000
    decoding["decode_seconds"] += decoded.seconds
    if decoded.outcome == UNDECODABLE:
        decoding["undecodable"] += 1
        report.add("store", path, UNDECODABLE, decoded.reason or "does not decode", sha)


def _commit(conn, results: list[tuple]) -> None:
    if not results:
        return
    now = stamp()
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sha, kind, detail, _, *decoded in results:
            record_outcome(conn, sha, kind, detail, now, by="verify store", verified=True)
            if decoded and decoded[0] is not None:
                record_decode(conn, sha, decoded[0], now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _walk(archive: Archive, store: Store, report: Report) -> None:
    """Orphans (store objects no ledger row names), `.part` leftovers, writable files."""
    conn = archive.conn
    orphans = writable = 0
    names: list[tuple[str, Path]] = []

    def flush() -> None:
        nonlocal orphans
        known = {r[0] for r in conn.execute(
            f"SELECT sha256 FROM files WHERE sha256 IN ({','.join('?' * len(names))})",
            [n for n, _ in names])}
        for name, path in names:
            if name not in known:
                orphans += 1
                report.add("store", str(path), WARNING,
                           "store object with no ledger row (an orphan; kept, not deleted)")
        names.clear()

    root = store.root / "sha256"
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if mode & 0o222:
                writable += 1
                report.add("store", str(path), WARNING,
                           f"writable (mode {mode & 0o777:o}); store files should be 0444")
            names.append((name, path))
            if len(names) >= 500:
                flush()
    if names:
        flush()
    parts = sorted(store.tmp.glob("*.part*")) if store.tmp.is_dir() else []
    for part in parts:
        report.add("store", str(part), WARNING,
                   "temporary file left by a killed run (the next ingest removes it)")
    report.notes.update({"orphans": orphans, "writable": writable, "part_files": len(parts)})
