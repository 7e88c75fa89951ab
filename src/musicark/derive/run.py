"""`derive`: Opus encodes for every file of the tracks a plan keeps as opus75.

Resumable and idempotent: an input that already has an opus75 derivation is skipped, so the
same plan twice encodes nothing new, and a killed run continues where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from musicark.archive import Archive, utc_now
from musicark.derive.opus import KIND, PARAMS, Encoded, encode_opus
from musicark.errors import BadQuery
from musicark.ingest.store import Store
from musicark.runner import fan_out


@dataclass
class DeriveReport:
    plan: int
    encoded: int = 0
    kept_original: int = 0  # the Opus file was no smaller: the original stands in for it
    already: int = 0
    failed: list[dict] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0

    def as_dict(self) -> dict:
        return {"plan": self.plan, "encoded": self.encoded,
                "kept_original": self.kept_original, "already_derived": self.already,
                "failed": self.failed, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}


def latest_plan(archive: Archive) -> int:
    row = archive.conn.execute("SELECT max(id) FROM plans").fetchone()
    if row[0] is None:
        raise BadQuery("no plan yet: run `musicark plan create --budget ...` first")
    return row[0]


def derive(archive: Archive, plan_id: int | None = None, *, workers: int | None = None,
           dask: str | object | None = None,
           progress: Callable[[int, int], None] = lambda done, total: None) -> DeriveReport:
    conn = archive.conn
    plan_id = plan_id or latest_plan(archive)
    if conn.execute("SELECT 1 FROM plans WHERE id = ?", (plan_id,)).fetchone() is None:
        raise BadQuery(f"no plan {plan_id}")
    inputs = conn.execute("""
        SELECT DISTINCT f.rowid, f.sha256, f.duration_ms, f.size, f.licence,
               EXISTS (SELECT 1 FROM derivations d WHERE d.input_file = f.rowid
                        AND d.kind = ?) AS done
          FROM plan_items pi
          JOIN track_files tf ON tf.track_rowid = pi.track_rowid
          JOIN files f ON f.rowid = tf.file_rowid
         WHERE pi.plan_id = ? AND pi.tier = ? AND f.status = 'ok' AND f.sha256 IS NOT NULL
         ORDER BY f.rowid""", (KIND, plan_id, KIND)).fetchall()
    report = DeriveReport(plan=plan_id)
    todo = [row for row in inputs if not row[5]]
    report.already = len(inputs) - len(todo)
    todo = _undamaged(archive, todo, report)
    by_sha = {row[1]: row for row in todo}
    calls = ((str(archive.store_path), sha, row[2], row[3]) for sha, row in by_sha.items())
    with Store(archive.store_path).writing():
        for done, result in enumerate(fan_out(encode_opus, calls, workers=workers, dask=dask),
                                      1):
            _record(archive, by_sha[result.input_sha], result, report)
            progress(done, len(todo))
    archive.record_event("derive.run", str(plan_id), "ok", report.as_dict())
    return report


def _undamaged(archive: Archive, rows: list, report: DeriveReport) -> list:
    """Inputs whose store file has the ledger's size; the others are recorded as damaged
    (status, fixity event) and reported as failed, never encoded as good."""
    from musicark.verify.damage import mark_damaged, size_damage

    store = Store(archive.store_path)
    good = []
    for row in rows:
        damage = size_damage(store.path_for(row[1]), row[3])
        if damage is None:
            good.append(row)
            continue
        mark_damaged(archive, row[1], *damage, by="derive")
        report.failed.append({"file": row[0], "reason": f"damaged: {damage[1]}"})
    return good


def _record(archive: Archive, row: tuple, result: Encoded, report: DeriveReport) -> None:
    conn = archive.conn
    input_rowid, input_sha, _, input_size, licence, _ = row
    now = utc_now()
    if not result.ok:
        report.failed.append({"file": input_rowid, "reason": result.reason})
        archive.record_event("derive.opus", input_sha, "failed", {"reason": result.reason})
        return
    if result.not_smaller:
        _keep_original(archive, input_rowid, input_sha, input_size, result, now)
        report.kept_original += 1
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        existing = conn.execute("SELECT rowid FROM files WHERE sha256 = ?",
                                (result.sha256,)).fetchone()
        output = existing[0] if existing else conn.execute(
            "INSERT INTO files(sha256, size, container, codec, bitrate, sample_rate, channels, "
            "duration_ms, licence, provenance, status, added_at) "
            "VALUES (?, ?, 'ogg', 'opus', ?, 48000, ?, ?, ?, ?, 'ok', ?)",
            (result.sha256, result.size, PARAMS["bit_rate"], result.channels,
             result.duration_ms, licence, f"derived {KIND} from sha256:{input_sha}", now),
        ).lastrowid
        conn.execute(
            "INSERT OR REPLACE INTO derivations(input_file, kind, output_file, params, "
            "created_at) VALUES (?, ?, ?, ?, ?)",
            (input_rowid, KIND, output, json.dumps(PARAMS, sort_keys=True), now))
        conn.execute(
            "INSERT INTO events(at, kind, subject, outcome, detail) VALUES (?,?,?,?,?)",
            (now, "derive.opus", input_sha, "ok",
             json.dumps({"output": result.sha256, "bytes": result.size})))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    report.encoded += 1
    report.bytes_in += input_size or 0
    report.bytes_out += result.size or 0


def _keep_original(archive: Archive, input_rowid: int, input_sha: str, input_size: int,
                   result: Encoded, now: str) -> None:
    """Record that the original is this track's opus75 file (its Opus encode was no smaller),
    so releases and tags use the original and the next run does not encode it again."""
    params = {**PARAMS, "kept": "original", "opus_bytes": result.size}
    detail = {"opus_bytes": result.size, "input_bytes": input_size}
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT OR REPLACE INTO derivations(input_file, kind, output_file, params, "
            "created_at) VALUES (?, ?, ?, ?, ?)",
            (input_rowid, KIND, input_rowid, json.dumps(params, sort_keys=True), now))
        conn.execute(
            "INSERT INTO events(at, kind, subject, outcome, detail) VALUES (?,?,?,?,?)",
            (now, "derive.opus", input_sha, "kept-original", json.dumps(detail)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
