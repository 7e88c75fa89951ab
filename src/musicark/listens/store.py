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
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from musicark.archive import Archive, utc_now
from musicark.errors import BadSource
from musicark.listens.formats import Reader, expand, reader_for
from musicark.listens.identity import blake64, encode, joined, listen_ids, months
from musicark.listens.records import Reject

MONTH_SCALE = 1_000_000  # key id * MONTH_SCALE + yyyymm: one int64 per (item, month)
REJECTS_KEPT = 1_000  # per file, in the stored report (counts per reason are complete)
IN_CHUNK = 500

RejectSink = Callable[[Path, Reject], None]
Progress = Callable[[int], None]


@dataclass
class FileReport:
    path: str
    sha256: str
    status: str = "imported"  # or "already imported"
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
    """One file's import, inside the caller's transaction."""

    def __init__(self, archive: Archive, source: int, report: FileReport) -> None:
        self.conn = archive.conn
        self.source = source
        self.report = report
        self.seen: dict[int, np.ndarray] = {}  # month → sorted identities (stored + new)
        self.dirty: set[int] = set()
        self.key_ids: dict[int, int] = {}  # khash → listen_keys.id

    def _seen(self, month: int) -> np.ndarray:
        if month not in self.seen:
            row = self.conn.execute("SELECT hashes FROM listen_seen WHERE source_id = ? AND "
                                    "month = ?", (self.source, month)).fetchone()
            self.seen[month] = (np.frombuffer(row[0], dtype="<u8").copy() if row
                                else np.empty(0, np.uint64))
        return self.seen[month]

    def add(self, table: pa.Table) -> None:
        if not len(table):
            return
        ids = listen_ids(table)
        month = months(table["ts"].to_numpy())
        _, first = np.unique(ids, return_index=True)
        keep = np.zeros(len(ids), bool)
        keep[first] = True
        for m in np.unique(month).tolist():
            sel = np.flatnonzero((month == m) & keep)
            known = self._seen(m)
            if len(known):
                pos = np.searchsorted(known, ids[sel]).clip(max=len(known) - 1)
                old = known[pos] == ids[sel]
                keep[sel[old]] = False
                sel = sel[~old]
            if len(sel):
                self.seen[m] = np.union1d(known, ids[sel])
                self.dirty.add(m)
        self.report.rows += len(table)
        self.report.duplicates += int(len(table) - keep.sum())
        if not keep.any():
            return
        table = table.filter(pa.array(keep))
        month = month[keep]
        key = self._keys(table)
        combined = key * MONTH_SCALE + month
        cells, counts = np.unique(combined, return_counts=True)
        self.conn.executemany(
            "INSERT INTO listen_counts(key_id, source_id, month, listens) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET listens = listens + excluded.listens",
            zip((cells // MONTH_SCALE).tolist(), [self.source] * len(cells),
                (cells % MONTH_SCALE).tolist(), counts.tolist(), strict=True))
        self.report.listens += len(table)
        lo, hi = int(month.min()), int(month.max())
        if self.report.months:
            lo, hi = min(lo, self.report.months[0]), max(hi, self.report.months[1])
        self.report.months = (lo, hi)

    def _keys(self, table: pa.Table) -> np.ndarray:
        """Per row, the id of its listened item (created on first sight)."""
        item = joined(table["artist"], table["title"], table["album"], table["mbid"],
                      table["isrc"], table["ext_id"])
        idx, values = encode(item)
        khash = np.array([blake64(v) for v in values], np.uint64).view(np.int64)
        missing = [i for i, h in enumerate(khash.tolist()) if h not in self.key_ids]
        if missing:
            self._load_keys([int(khash[i]) for i in missing])
            new = [i for i in missing if int(khash[i]) not in self.key_ids]
            if new:
                _, first_row = np.unique(idx, return_index=True)
                cols = {c: table[c].take(pa.array(first_row[new])).to_pylist()
                        for c in ("artist", "title", "album", "duration_ms", "mbid", "isrc",
                                  "ext_id")}
                self.conn.executemany(
                    "INSERT OR IGNORE INTO listen_keys(khash, artist, title, album, "
                    "duration_ms, mbid, isrc, ext_id) VALUES (?,?,?,?,?,?,?,?)",
                    zip([int(khash[i]) for i in new], cols["artist"], cols["title"],
                        cols["album"], cols["duration_ms"], cols["mbid"], cols["isrc"],
                        cols["ext_id"], strict=True))
                self._load_keys([int(khash[i]) for i in new])
        ids = np.array([self.key_ids[h] for h in khash.tolist()], np.int64)
        return ids[idx]

    def _load_keys(self, hashes: list[int]) -> None:
        for at in range(0, len(hashes), IN_CHUNK):
            chunk = hashes[at:at + IN_CHUNK]
            self.key_ids.update(self.conn.execute(
                f"SELECT khash, id FROM listen_keys WHERE khash IN ({','.join('?' * len(chunk))})",
                chunk).fetchall())

    def finish(self) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO listen_seen(source_id, month, hashes) VALUES (?, ?, ?)",
            [(self.source, m, self.seen[m].astype("<u8").tobytes()) for m in sorted(self.dirty)])


def import_file(archive: Archive, read: Reader, path: Path, *, fmt: str, source: int,
                user: str = "", on_reject: RejectSink | None = None) -> FileReport:
    sha, size = file_sha256(path)
    report = FileReport(str(path), sha)
    conn = archive.conn
    if conn.execute("SELECT 1 FROM listen_files WHERE sha256 = ?", (sha,)).fetchone():
        report.status = "already imported"
        return report
    conn.execute("BEGIN IMMEDIATE")
    try:
        work = _FileImport(archive, source, report)
        for batch in read(path, user=user):
            for reject in batch.rejects:
                report.rejected += 1
                report.reasons[reject.reason] += 1
                if len(report.rejects) < REJECTS_KEPT:
                    report.rejects.append({"line": reject.line, "reason": reject.reason})
                if on_reject is not None:
                    on_reject(path, reject)
            work.add(batch.table)
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
                   match: bool = True) -> dict[str, Any]:
    """Import listen files of one format into one listens source (default: the format's
    name), then match the new listened items to catalog tracks. Returns the report."""
    read = reader_for(fmt, columns)
    files = expand([Path(p) for p in paths])
    if not files:
        raise BadSource("no listen files found in " + ", ".join(str(p) for p in paths))
    for path in files:
        if not path.is_file():
            raise BadSource(f"{path}: no such file")
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
        "skipped_files": sum(r.status != "imported" for r in reports),
        "rows": sum(r.rows for r in reports), "listens": sum(r.listens for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "rejected": sum(r.rejected for r in reports),
        "reasons": dict(sum((r.reasons for r in reports), Counter())),
    }
    if match:
        from musicark.listens.match import match_listens

        summary["match"] = match_listens(archive)
    archive.record_event("listens.import", source or fmt, "ok",
                         {k: v for k, v in summary.items() if k != "files"})
    return summary
