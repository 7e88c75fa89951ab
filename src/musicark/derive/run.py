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
from musicark.runner import call_budget, decoder_failure, fan_out

# When an encode is pointless, decided before encoding. libopus's 75 kbit/s VBR overshoots on
# some material (sparse tonal music reached 113 kbit/s), so a lossy source at up to 30 %
# above the target would only lose a generation of quality for little or no saving; and
# re-encoding Opus is never worth it.
SKIP_RATIO_LOSSY = 1.3
SKIP_RATIO_ANY = 1.1
LOSSLESS = ("flac", "alac", "wavpack", "ape", "tta", "tak", "mlp", "truehd", "shorten")


@dataclass
class DeriveReport:
    plan: int
    encoded: int = 0
    kept_original: int = 0  # the Opus file was no smaller: the original stands in for it
    skipped_low_bitrate: int = 0  # not encoded at all: the source is already that small
    already: int = 0
    failed: list[dict] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0
    nothing_because: str | None = None  # why a run had nothing to do

    def as_dict(self) -> dict:
        return {"plan": self.plan, "encoded": self.encoded,
                "kept_original": self.kept_original,
                "skipped_low_bitrate": self.skipped_low_bitrate,
                "already_derived": self.already, "failed": self.failed,
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "nothing_because": self.nothing_because}


def file_bitrate(size: int | None, duration_ms: int | None) -> float | None:
    """Whole-file bits per second (tags and container included, as the Opus file's are)."""
    if not size or not duration_ms:
        return None
    return size * 8 * 1000 / duration_ms


def why_not_encode(codec: str | None, size: int | None, duration_ms: int | None
                   ) -> str | None:
    """Why encoding this source to Opus 75k is pointless, or None when it is worth trying."""
    if codec == "opus":
        return "already Opus: re-encoding would lose quality for little saving"
    rate = file_bitrate(size, duration_ms)
    if rate is None:
        return None
    lossless = codec is not None and (codec in LOSSLESS or codec.startswith("pcm_"))
    limit = PARAMS["bit_rate"] * (SKIP_RATIO_ANY if lossless else SKIP_RATIO_LOSSY)
    if rate <= limit:
        return (f"source at {rate / 1000:.0f} kbit/s: an Opus {PARAMS['bit_rate'] // 1000}k "
                "encode would be about as large")
    return None


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
                        AND d.kind = ?) AS done, f.codec
          FROM plan_items pi
          JOIN track_files tf ON tf.track_rowid = pi.track_rowid
          JOIN files f ON f.rowid = tf.file_rowid
         WHERE pi.plan_id = ? AND pi.tier = ? AND f.status = 'ok' AND f.sha256 IS NOT NULL
         ORDER BY f.rowid""", (KIND, plan_id, KIND)).fetchall()
    report = DeriveReport(plan=plan_id)
    todo = [row for row in inputs if not row[5]]
    report.already = len(inputs) - len(todo)
    if not inputs:
        report.nothing_because = _why_no_inputs(archive, plan_id)
    elif not todo:
        report.nothing_because = "every opus75 file of the plan is derived already"
    todo = _undamaged(archive, todo, report)
    for row in list(todo):
        why = why_not_encode(row[6], row[3], row[2])
        if why is not None:
            _keep_original(archive, row[0], row[1], row[3], None, utc_now(), reason=why)
            report.skipped_low_bitrate += 1
            todo.remove(row)
    by_sha = {row[1]: row for row in todo}
    calls = ((str(archive.store_path), sha, row[2], row[3]) for sha, row in by_sha.items())
    with Store(archive.store_path).writing():
        for done, result in enumerate(fan_out(encode_opus, calls, workers=workers, dask=dask,
                                              on_crash=_encoder_crashed, budget=_budget), 1):
            _record(archive, by_sha[result.input_sha], result, report)
            progress(done, len(todo))
    archive.record_event("derive.run", str(plan_id), "ok", report.as_dict())
    return report


def _encoder_crashed(args: tuple, why: str) -> Encoded:
    """An input whose encode killed its worker (a decoder crash) or ran past its time budget
    fails alone; the run goes on, and the next run tries it again."""
    return Encoded(args[1], False, decoder_failure(why, "the encoder"))


def _budget(args: tuple) -> float:
    """An encode's time budget: by the bytes it reads (musicark.runner.call_budget), plus
    the audio's duration (an encode at real time, on a loaded core, is still in budget)."""
    _, _, duration_ms, size = args
    return call_budget(size or 0) + (duration_ms or 0) / 1000


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
    input_rowid, input_sha, _, input_size, licence, _, _ = row
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


def _why_no_inputs(archive: Archive, plan_id: int) -> str:
    planned = archive.conn.execute(
        "SELECT count(*) FROM plan_items WHERE plan_id = ? AND tier = ?",
        (plan_id, KIND)).fetchone()[0]
    if not planned:
        return f"plan {plan_id} keeps no track as {KIND}"
    return f"none of the {planned:,} tracks plan {plan_id} keeps as {KIND} has a file"


def _keep_original(archive: Archive, input_rowid: int, input_sha: str, input_size: int,
                   result: Encoded | None, now: str, *, reason: str | None = None) -> None:
    """Record that the original is this track's opus75 file (its Opus encode was no smaller,
    or would not be: `reason`), so releases and tags use the original and the next run does
    not encode it again."""
    opus_bytes = result.size if result is not None else None
    params = {**PARAMS, "kept": "original", "opus_bytes": opus_bytes}
    detail = {"opus_bytes": opus_bytes, "input_bytes": input_size}
    if reason:
        params["why"] = detail["why"] = reason
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
