"""Importing listens: read a file's batches, drop listens already counted, count the rest per
listened item, source and month, in one transaction per file.

Provenance and idempotence: each raw file is hashed (SHA-256) first; a file whose hash is in
`listen_files` was imported already and is skipped, so re-importing changes nothing. A
listen seen before (same source user, timestamp and track, e.g. from an overlapping second
export of one history) is counted once: each source keeps, per month, the sorted 64-bit
identities of its listens (`listen_seen`). A crash or kill mid-file leaves nothing of that
file; running the import again continues with it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from musicark.archive import Archive, utc_now
from musicark.errors import BadSource
from musicark.listens.formats import Reader, expand, reader_for
from musicark.listens.identity import code, combine, months
from musicark.listens.records import REASON_CODES, Batch, Reject, check_columns
from musicark.regular import require_regular

MONTH_SCALE = 1_000_000  # key id * MONTH_SCALE + yyyymm: one int64 per (item, month)
REJECTS_KEPT = 1_000  # per file, in the stored report (counts per reason are complete)
STRING_COLUMNS = ("user", "artist", "title", "album", "mbid", "isrc", "ext_id")
ITEM_COLUMNS = ("artist", "title", "album", "mbid", "isrc", "ext_id")

RejectSink = Callable[[Path, Reject], None]
Progress = Callable[[int], None]


@dataclass
class FileReport:
    path: str
    sha256: str
    status: str = "imported"  # or "already imported"; "nothing valid" or "empty": not recorded
    rows: int = 0  # valid listens read
    listens: int = 0  # new listens counted
    duplicates: int = 0  # valid listens already counted (this file or before)
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    rejects: list[dict] = field(default_factory=list)
    months: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "status": self.status,
                "rows": self.rows, "listens": self.listens, "duplicates": self.duplicates,
                "rejected": self.rejected, "reasons": dict(self.reasons),
                "rejects": self.rejects, "months": list(self.months) if self.months else None}


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BadSource(f"{path}: cannot read: {exc}") from exc
    return digest.hexdigest(), size


def source_id(archive: Archive, name: str, fmt: str) -> int:
    row = archive.conn.execute("SELECT id FROM listen_sources WHERE name = ?", (name,)).fetchone()
    if row:
        return row[0]
    return archive.conn.execute(
        "INSERT INTO listen_sources(name, format, created_at) VALUES (?, ?, ?)",
        (name, fmt, utc_now())).lastrowid


class _FileImport:
    """One file's import, inside the caller's transaction (which holds the write lock)."""

    def __init__(self, archive: Archive, source: int, report: FileReport) -> None:
        self.conn = archive.conn
        self.source = source
        self.report = report
        self.seen: dict[int, np.ndarray] = {}  # month → sorted identities (stored + new)
        self.dirty: set[int] = set()
        self.key_ids: dict[int, int] = {}  # khash → listen_keys.id
        self.next_key = self.conn.execute(
            "SELECT coalesce(max(id), 0) + 1 FROM listen_keys").fetchone()[0]
        self.cells: list[np.ndarray] = []  # key * MONTH_SCALE + month, one per listen

    def _seen(self, month: int) -> np.ndarray:
        if month not in self.seen:
            row = self.conn.execute("SELECT hashes FROM listen_seen WHERE source_id = ? AND "
                                    "month = ?", (self.source, month)).fetchone()
            self.seen[month] = (np.frombuffer(row[0], dtype="<u8").copy() if row
                                else np.empty(0, np.uint64))
        return self.seen[month]

    def add(self, batch: Batch, on_reject: Callable[[Reject], None]) -> None:
        table = batch.table
        if not len(table):
            return
        coded = {c: code(table[c]) for c in STRING_COLUMNS}
        keep = np.ones(len(table), bool)
        if not batch.checked:
            reasons = check_columns(table["ts"], coded)
            bad = np.flatnonzero(reasons)
            if len(bad):
                lines = table["line"].to_numpy()
                for i in bad.tolist():
                    on_reject(Reject(int(lines[i]), REASON_CODES[reasons[i] - 1]))
                keep[bad] = False
        ts = pc.fill_null(table["ts"], 0).to_numpy()
        rows = np.flatnonzero(keep)
        self.report.rows += len(rows)
        hashes = {c: coded[c].row_hashes() for c in STRING_COLUMNS}
        track = combine(hashes["artist"], hashes["title"])
        ids = combine(hashes["user"], track, ts.astype(np.uint64))
        month = months(ts)
        rows = self._new(rows, ids, month)
        self.report.duplicates += int(keep.sum()) - len(rows)
        if not len(rows):
            return
        item = combine(*(hashes[c] for c in ITEM_COLUMNS))[rows].view(np.int64)
        uniq, first, inverse = np.unique(item, return_index=True, return_inverse=True)
        key = self._key_ids(uniq, rows[first], coded, table)[inverse]
        self.cells.append(key * MONTH_SCALE + month[rows])
        self.report.listens += len(rows)
        lo, hi = int(month[rows].min()), int(month[rows].max())
        if self.report.months:
            lo, hi = min(lo, self.report.months[0]), max(hi, self.report.months[1])
        self.report.months = (lo, hi)

    def _new(self, rows: np.ndarray, ids: np.ndarray, month: np.ndarray) -> np.ndarray:
        """Of `rows`, those that are listens not counted before (in this file or earlier):
        per month, identities are sorted once, checked against that month's stored ones and
        against each other (the first of equal ones counts), and merged in."""
        by_month = rows[np.argsort(month[rows], kind="stable")]  # dumps come sorted: cheap
        bounds = np.flatnonzero(np.diff(month[by_month])) + 1
        fresh = []
        for group in np.split(by_month, bounds):
            if not len(group):
                continue
            m = int(month[group[0]])
            group = group[np.argsort(ids[group])]
            gid = ids[group]
            ok = np.ones(len(group), bool)
            ok[1:] = gid[1:] != gid[:-1]
            known = self._seen(m)
            if len(known):
                pos = np.searchsorted(known, gid).clip(max=len(known) - 1)
                ok &= known[pos] != gid
            if ok.any():
                merged = np.concatenate([known, gid[ok]])
                self.seen[m] = np.sort(merged, kind="stable")  # a merge of two sorted runs
                self.dirty.add(m)
                fresh.append(group[ok])
        return np.sort(np.concatenate(fresh)) if fresh else np.empty(0, np.int64)

    def _key_ids(self, uniq: np.ndarray, first_rows: np.ndarray, coded: dict,
                 table: pa.Table) -> np.ndarray:
        """listen_keys ids of the batch's distinct items (created on first sight)."""
        hashes = uniq.tolist()
        missing = [i for i, h in enumerate(hashes) if h not in self.key_ids]
        if missing:
            self._load_keys([hashes[i] for i in missing])
            new = [i for i in missing if hashes[i] not in self.key_ids]
            if new:
                rows = first_rows[new]
                values = {c: coded[c].take(rows) for c in ITEM_COLUMNS}
                duration = pc.take(table["duration_ms"], pa.array(rows)).to_pylist()
                # ids assigned here: the file's transaction holds the only write lock
                ids = range(self.next_key, self.next_key + len(new))
                self.next_key += len(new)
                self.conn.executemany(
                    "INSERT INTO listen_keys(id, khash, artist, title, album, duration_ms, "
                    "mbid, isrc, ext_id) VALUES (?,?,?,?,?,?,?,?,?)",
                    zip(ids, [hashes[i] for i in new], values["artist"], values["title"],
                        values["album"], duration, values["mbid"], values["isrc"],
                        values["ext_id"], strict=True))
                self.key_ids.update(zip([hashes[i] for i in new], ids, strict=True))
        return np.array([self.key_ids[h] for h in hashes], np.int64)

    def _load_keys(self, hashes: list[int]) -> None:
        """Ids of items already stored, one query (a temporary table joined on khash)."""
        if self.next_key == 1:  # no item was stored before this file
            return
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_keys(khash INTEGER)")
        self.conn.execute("DELETE FROM wanted_keys")
        self.conn.executemany("INSERT INTO wanted_keys VALUES (?)", ((h,) for h in hashes))
        self.key_ids.update(self.conn.execute(
            "SELECT k.khash, k.id FROM wanted_keys w JOIN listen_keys k ON k.khash = w.khash"))

    def finish(self) -> None:
        if self.cells:
            cells, counts = np.unique(np.concatenate(self.cells), return_counts=True)
            self.conn.executemany(
                "INSERT INTO listen_counts(key_id, source_id, month, listens) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET listens = listens + excluded.listens",
                zip((cells // MONTH_SCALE).tolist(), itertools.repeat(self.source),
                    (cells % MONTH_SCALE).tolist(), counts.tolist()))
        self.conn.executemany(
            "INSERT OR REPLACE INTO listen_seen(source_id, month, hashes) VALUES (?, ?, ?)",
            [(self.source, m, self.seen[m].astype("<u8").tobytes()) for m in sorted(self.dirty)])


def import_file(archive: Archive, read: Reader, path: Path, *, fmt: str, source: int,
                user: str = "", on_reject: RejectSink | None = None) -> FileReport:
    sha, size = file_sha256(path)
    report = FileReport(str(path), sha)
    conn = archive.conn
    if not size:
        # Every empty file has one hash: recording it would skip the next empty file
        # (of any format) as "already imported", so it is reported, never recorded.
        report.status = "empty"
        return report
    if conn.execute("SELECT 1 FROM listen_files WHERE sha256 = ?", (sha,)).fetchone():
        report.status = "already imported"
        return report
    conn.execute("BEGIN IMMEDIATE")
    if conn.execute("SELECT 1 FROM listen_files WHERE sha256 = ?", (sha,)).fetchone():
        # another import of the same file committed while this one waited for the lock
        conn.execute("ROLLBACK")
        report.status = "already imported"
        return report
    try:
        work = _FileImport(archive, source, report)
        def rejected(reject: Reject) -> None:
            report.rejected += 1
            report.reasons[reject.reason] += 1
            if len(report.rejects) < REJECTS_KEPT:
                report.rejects.append({"line": reject.line, "reason": reject.reason})
            if on_reject is not None:
                on_reject(path, reject)

        for batch in read(path, user=user):
            for reject in batch.rejects:
                rejected(reject)
            work.add(batch, rejected)
        if not report.rows and report.rejected:
            # Not one valid row: likely the wrong --format. Nothing is stored, so the file
            # can be imported again with the right one; the rejects are still reported.
            conn.execute("ROLLBACK")
            report.status = "nothing valid"
            return report
        work.finish()
        conn.execute(
            "INSERT INTO listen_files(source_id, sha256, size, path, format, imported_at, "
            "report) VALUES (?,?,?,?,?,?,?)",
            (source, sha, size, str(path), fmt, utc_now(), json.dumps(report.as_dict())))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return report


def import_listens(archive: Archive, fmt: str, paths: list[Path], *, source: str | None = None,
                   user: str = "", columns: dict[str, str] | None = None,
                   on_reject: RejectSink | None = None, progress: Progress | None = None,
                   match: bool = True,
                   match_progress: Callable[[int, int], None] | None = None
                   ) -> dict[str, Any]:
    """Import listen files of one format into one listens source (default: the format's
    name), then (unless `match` is False: `listens rematch` does it later) match the new
    listened items to catalog tracks. Returns the report."""
    read = reader_for(fmt, columns)
    files = expand([Path(p) for p in paths], fmt)
    if not files:
        raise BadSource("no listen files found in " + ", ".join(str(p) for p in paths))
    for path in files:
        require_regular(path)
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    sid = source_id(archive, source or fmt, fmt)
    conn.execute("COMMIT")
    reports = []
    for path in files:
        reports.append(import_file(archive, read, path, fmt=fmt, source=sid, user=user,
                                   on_reject=on_reject))
        if progress is not None:
            progress(path.stat().st_size)
    summary: dict[str, Any] = {
        "source": source or fmt, "format": fmt, "files": [r.as_dict() for r in reports],
        "imported_files": sum(r.status == "imported" for r in reports),
        "skipped_files": sum(r.status == "already imported" for r in reports),
        "invalid_files": [r.path for r in reports if r.status in ("nothing valid", "empty")],
        "rows": sum(r.rows for r in reports), "listens": sum(r.listens for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "rejected": sum(r.rejected for r in reports),
        "reasons": dict(sum((r.reasons for r in reports), Counter())),
    }
    if match:
        from musicark.listens.match import match_listens

        summary["match"] = match_listens(archive, progress=match_progress)
    archive.record_event("listens.import", source or fmt, "ok",
                         {k: v for k, v in summary.items() if k != "files"})
    return summary
