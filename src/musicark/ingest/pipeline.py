"""`ingest`: walk folders, fan the per-file work out, and record results with one writer.

Resumable: a path already in the ledger with the same size and mtime is not examined again,
results are committed in small batches, store writes are atomic and idempotent, and orphan
temporary files of a killed run are removed at the start of the next one.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from musicark.archive import Archive, utc_now
from musicark.errors import BadQuery, Interrupted, MusicarkError
from musicark.ingest.dedup import group_new_files
from musicark.ingest.examine import FileResult, examine
from musicark.ingest.paths import path_key, shown
from musicark.ingest.store import Store
from musicark.ingest.walk import Skip, unread, walk
from musicark.runner import call_budget, fan_out

COMMIT_EVERY = 200
SAMPLES = 20  # paths not walked or read named in the report (all: `ledger --skipped`)


class IngestBusy(MusicarkError):
    """Another ingest holds this archive's ingest lock."""

    exit_code = 10


@dataclass
class IngestReport:
    examined: int = 0
    ingested: int = 0
    duplicates: int = 0
    unchanged: int = 0
    skipped: int = 0
    quarantined: Counter = field(default_factory=Counter)
    bytes: int = 0
    seconds: float = 0.0
    orphans_removed: int = 0
    path_notes: Counter = field(default_factory=Counter)
    near_duplicates: int = 0
    matched: int = 0
    check: str = "structure"
    run: int | None = None
    not_walked: Counter = field(default_factory=Counter)  # failures, by kind
    archive_folder: str | None = None  # the archive's own folder, when a path held it
    symlinked_folders: int = 0
    samples: list[str] = field(default_factory=list)  # the first paths not walked or read

    @property
    def exit_code(self) -> int:
        """9 when some path could not be walked or read (see docs/ingest.md), else 0."""
        return 9 if self.not_walked else 0

    def skipped_path(self, skip: Skip) -> None:
        if skip.failed:
            self.not_walked[skip.kind] += 1
            if len(self.samples) < SAMPLES:
                self.samples.append(f"{skip.kind}: {skip.line()}")
        elif skip.kind == "archive":
            self.archive_folder = self.archive_folder or shown(skip.path)
        else:
            self.symlinked_folders += 1

    def as_dict(self) -> dict:
        return {
            "check": self.check,
            "examined": self.examined, "ingested": self.ingested,
            "duplicates": self.duplicates, "unchanged": self.unchanged,
            "skipped_not_audio": self.skipped,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(self.quarantined.most_common()),
            "bytes": self.bytes, "seconds": round(self.seconds, 3),
            "files_per_second": round(self.examined / self.seconds, 1) if self.seconds else None,
            "orphans_removed": self.orphans_removed,
            "path_notes": dict(self.path_notes),
            "near_duplicates": self.near_duplicates,
            "matched_to_catalog": self.matched,
            "run": self.run,
            "not_walked_or_read": sum(self.not_walked.values()),
            "not_walked_or_read_by_kind": dict(self.not_walked.most_common()),
            "not_walked_or_read_first": self.samples,
            "archive_folder_not_ingested": self.archive_folder,
            "symlinked_folders_not_followed": self.symlinked_folders,
            "exit_code": self.exit_code,
        }


def reason_kind(reason: str) -> str:
    """The kind of a quarantine reason, for summaries: 'tags too large (2,080,052
    characters); ...' → 'tags too large'."""
    return re.sub(r"\s*\(.*?\)", "", reason.split(";")[0].split(":")[0]).strip()


class Ledger:
    """The one writer of ingest results: small transactions, so a kill loses little."""

    def __init__(self, archive: Archive, licence: str | None, provenance: str | None,
                 before_commit: Callable[[], None] = lambda: None) -> None:
        self.conn = archive.conn
        self.before_commit = before_commit
        self.licence = licence
        self.provenance = provenance
        self.pending = 0

    def known(self, raw: bytes) -> bool:
        """True when the path was recorded with the size and mtime it has now. A path
        quarantined without content (unreadable, special) is never known: each run tries
        it again and reports it again."""
        row = self.conn.execute(
            "SELECT p.size, p.mtime_ns FROM file_paths p LEFT JOIN files f ON "
            "f.rowid = p.file_rowid WHERE p.path = ? AND (p.file_rowid IS NULL OR "
            "f.sha256 IS NOT NULL)", (path_key(raw),)).fetchone()
        if row is None:
            return False
        try:
            st = os.stat(raw)
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == tuple(row)

    def record(self, r: FileResult) -> bool:
        """Write one result; returns True when its content was new to the ledger (a result
        without content, quarantined by its path, always counts as new)."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
        now = utc_now()
        new = True
        file_rowid = None
        if r.status != "skipped":
            if r.sha256 is not None:
                row = self.conn.execute("SELECT rowid, status FROM files WHERE sha256 = ?",
                                        (r.sha256,)).fetchone()
                if row is not None:
                    file_rowid, new = row[0], False
                    if row[1] == "absent" and r.status == "ok":
                        # Known from a release, not held until now: the store has its bytes.
                        self.conn.execute("UPDATE files SET status = 'ok', reason = NULL, "
                                          "provenance = ?, added_at = ? WHERE rowid = ?",
                                          (self.provenance, now, file_rowid))
            else:
                # Quarantined by path (a FIFO, a loop, a file that changed while read): one
                # row per path, updated by each run that sees it again.
                row = self.conn.execute(
                    "SELECT f.rowid FROM file_paths p JOIN files f ON f.rowid = p.file_rowid "
                    "WHERE p.path = ? AND f.sha256 IS NULL", (r.path,)).fetchone()
                if row is not None:
                    file_rowid = row[0]
                    self.conn.execute("UPDATE files SET status = ?, reason = ?, size = ? "
                                      "WHERE rowid = ?", (r.status, r.reason, r.size, file_rowid))
            if file_rowid is None:
                licence = self.licence or (r.common or {}).get("licence")
                f = r.facts
                file_rowid = self.conn.execute(
                    "INSERT INTO files(sha256, size, container, codec, bitrate, sample_rate, "
                    "channels, duration_ms, fingerprint, tags, common, licence, provenance, "
                    "status, reason, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r.sha256, r.size, f.get("container"), f.get("codec"), f.get("bitrate"),
                     f.get("sample_rate"), f.get("channels"), f.get("duration_ms"),
                     r.fingerprint, _json(r.tags), _json(r.common), licence, self.provenance,
                     r.status, r.reason, now),
                ).lastrowid
            self.conn.execute(
                "INSERT INTO events(at, kind, subject, outcome, detail) VALUES (?,?,?,?,?)",
                (now, "file.ingest", r.sha256 or shown(r.path), r.status if new else "duplicate",
                 json.dumps({"path": shown(r.path), "reason": r.reason}, ensure_ascii=False)),
            )
        before = self.conn.execute("SELECT file_rowid FROM file_paths WHERE path = ?",
                                   (r.path,)).fetchone()
        self.conn.execute(
            "INSERT INTO file_paths(path, file_rowid, size, mtime_ns, seen_at, note, reason) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET file_rowid = "
            "excluded.file_rowid, size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "seen_at = excluded.seen_at, note = excluded.note, reason = excluded.reason",
            (r.path, file_rowid, r.size, r.mtime_ns, now, r.path_note,
             r.reason if r.status == "skipped" else None),
        )
        if before is not None and before[0] is not None and before[0] != file_rowid:
            # A path quarantined without content (it was a FIFO, or changed while read) that
            # now holds something else: its contentless row would be a quarantine of nothing.
            self.conn.execute(
                "DELETE FROM files WHERE rowid = ? AND sha256 IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM file_paths WHERE file_rowid = ?) AND NOT EXISTS "
                "(SELECT 1 FROM track_files WHERE file_rowid = ?)", (before[0],) * 3)
        self.pending += 1
        if self.pending >= COMMIT_EVERY:
            self.commit()
        return new

    def skip(self, run: int, skip: Skip) -> None:
        """Record a path this run did not walk or read, with why."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT OR REPLACE INTO ingest_skips(run_id, path, kind, reason) "
                          "VALUES (?,?,?,?)", (run, skip.path, skip.kind, skip.reason))

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.before_commit()
            self.conn.execute("COMMIT")
        self.pending = 0


def _interrupted(archive: Archive, store: Store, report: IngestReport, started: float,
                 paths: list[Path]) -> Interrupted:
    """What an interrupted run kept, said truthfully: its recorded files, and the store
    objects that workers finished but the ledger had not recorded yet (a rerun of the same
    ingest examines their paths again and adopts them, as content it already holds)."""
    report.seconds = time.monotonic() - started
    _end_run(archive, report.run, "interrupted")
    unrecorded = store.unrecorded(archive.conn)
    archive.record_event("ingest.run", ", ".join(map(os.path.abspath, paths)), "interrupted",
                         {**report.as_dict(), "store_objects_without_ledger_row": unrecorded})
    archive.conn.commit()
    kept = (f"{unrecorded:,} store objects without a ledger row will be adopted by the next "
            "run" if unrecorded else "every store object has its ledger row")
    return Interrupted(f"{report.examined:,} files recorded; {kept}; run the same ingest "
                       "again to continue")


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def ingest(
    archive: Archive,
    paths: list[Path],
    *,
    link: bool = False,
    workers: int | None = None,
    dask: str | object | None = None,
    licence: str | None = None,
    provenance: str | None = None,
    fingerprint: bool = True,
    decode_check: bool = False,
    match: bool = True,
    progress: Callable[[int, FileResult], None] = lambda n, r: None,
    counted: Callable[[int], None] = lambda total: None,
    phase: Callable[[str], None] = lambda name: None,
) -> IngestReport:
    """Ingest every file under `paths`. The source files are never modified or moved.

    `workers` sets the local process pool size (default: all cores); `dask` is a scheduler
    address or a `distributed.Client` to fan out on instead. Results are identical either way.
    Each file gets the structure check (every packet demuxed, container CRCs, declared vs
    demuxed length); `decode_check` decodes every frame instead (slower, see probe.py).
    `counted(total)` is told how many files the paths hold (a quick walk first, so progress
    has a total); `progress(n, result)` then counts files looked at, unchanged ones included.
    """
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing:
        raise BadQuery(f"no such file or directory: {', '.join(map(str, missing))}")
    started = time.monotonic()
    report = IngestReport(check="decode" if decode_check else "structure")
    store = Store(archive.store_path)
    with ExitStack() as held:
        lock = held.enter_context(open(archive.path / ".ingest.lock", "w"))
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestBusy("another ingest is running on this archive") from exc
        report.orphans_removed = held.enter_context(store.writing(clean=True))
        # Local workers share this kernel: one syncfs of the store a ledger batch makes their
        # renames durable before they are recorded (an fsync of a directory a file cost
        # ~15 ms). Dask workers may write through other machines' mounts: they sync each.
        local = dask is None
        ledger = Ledger(archive, licence, provenance,
                        before_commit=store.sync if local else lambda: None)
        report.run = _start_run(archive, paths)
        skips: deque[Skip] = deque()  # paths not walked or read, recorded by this writer
        counted(sum(1 for _ in walk(paths, own=archive.path)))

        def drain() -> None:
            while skips:
                skip = skips.popleft()
                report.skipped_path(skip)
                ledger.skip(report.run, skip)

        def todo() -> Iterator[bytes]:
            for raw in walk(paths, own=archive.path, skipped=skips.append):
                if ledger.known(raw):
                    report.unchanged += 1
                else:
                    yield raw

        args = (str(store.root), link, fingerprint, "decode" if decode_check else "structure",
                not local)
        results = fan_out(examine, ((raw, *args) for raw in todo()), workers=workers,
                          dask=dask, on_crash=_crashed, budget=_budget)
        try:
            try:
                for result in results:
                    report.examined += 1
                    new = ledger.record(result)
                    if result.status == "quarantined" and result.sha256 is None:
                        skips.append(unread(result.path, result.reason))
                    drain()
                    if result.path_note:
                        report.path_notes[result.path_note] += 1
                    if result.status == "skipped":
                        report.skipped += 1
                    elif not new:
                        report.duplicates += 1
                    elif result.status == "quarantined":
                        report.quarantined[reason_kind(result.reason)] += 1
                    else:
                        report.ingested += 1
                        report.bytes += result.size or 0
                    progress(report.examined + report.unchanged, result)
            finally:
                drain()
                ledger.commit()
            phase("grouping near-duplicates")
            report.near_duplicates = group_new_files(archive)["grouped"]
            if match:
                phase("matching to the catalog")
                from musicark.ingest.match import match_files

                report.matched = match_files(archive, unchecked_only=True).as_dict()[
                    "matched_files"]
        except KeyboardInterrupt:
            results.close()  # stops the workers, letting the files in progress finish
            if archive.conn.in_transaction:  # grouping or matching: the next run redoes it
                archive.conn.execute("ROLLBACK")
            raise _interrupted(archive, store, report, started, paths) from None
    report.seconds = time.monotonic() - started
    _end_run(archive, report.run, "ok")
    archive.record_event("ingest.run", ", ".join(map(os.path.abspath, paths)), "ok",
                         report.as_dict())
    return report


def _start_run(archive: Archive, paths: list[Path]) -> int:
    """A row for this run, committed first: the paths it skips are kept under its id."""
    given = [shown(path_key(os.path.abspath(os.fsencode(p)))) for p in paths]
    with archive.conn:
        return archive.conn.execute(
            "INSERT INTO ingest_runs(started_at, paths) VALUES (?, ?)",
            (utc_now(), json.dumps(given, ensure_ascii=False))).lastrowid


def _end_run(archive: Archive, run: int | None, outcome: str) -> None:
    with archive.conn:
        archive.conn.execute("UPDATE ingest_runs SET finished_at = ?, outcome = ? "
                             "WHERE id = ?", (utc_now(), outcome, run))


def _crashed(args: tuple, why: str) -> FileResult:
    """A file whose examination killed its worker (a decoder crash on crafted input) or ran
    past its time budget (a decoder that hangs) is stored and quarantined with how; the
    ingest goes on."""
    return examine(*args, crashed=why)


def _budget(args: tuple) -> float:
    """A file's time budget (musicark.runner.call_budget): by its size now."""
    try:
        return call_budget(os.stat(args[0]).st_size)
    except OSError:  # gone or unreadable: examine says so, within the floor
        return call_budget(0)
