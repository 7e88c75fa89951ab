"""The full decode check of `verify store --decode`: every frame of an audio file decoded to
its end by the same check `ingest --decode-check` makes (musicark.ingest.probe), and the
ledger's record of it (table decode_checks, a "fixity" event for each failure).

A file whose bytes still match their SHA-256 but do not decode was broken when it was
ingested (the fast ingest checks structure, not every frame): it is reported as
`undecodable`, a finding of its own, not `damaged`; nothing good exists to repair it from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from musicark.verify.report import UNDECODABLE  # also the decode_checks outcome

BY = "verify store --decode"

# Ledger rows that are audio to decode: a codec, not a restore patch, not already set aside
# by ingest (a quarantined file's reason is already recorded), held here (not 'absent').
AUDIO_SQL = ("f.codec IS NOT NULL AND f.codec != 'zstd-patch' "
             "AND f.status NOT IN ('quarantined', 'absent')")


@dataclass(frozen=True)
class Decoded:
    outcome: str  # 'ok' or UNDECODABLE
    reason: str | None  # the decoder's reason when undecodable
    audio_ms: int  # audio decoded (0 when undecodable)
    seconds: float  # wall time of the decode


def decode_file(path: str) -> Decoded:
    """Decode every frame of the file at `path` (no fingerprint)."""
    import av

    from musicark.ingest.probe import BadAudio, NotAudio, probe

    began = time.perf_counter()
    try:
        facts = probe(path, fingerprint=False)
    except NotAudio as exc:
        return Decoded(UNDECODABLE, f"not audio to FFmpeg: {exc}", 0,
                       time.perf_counter() - began)
    except BadAudio as exc:
        return Decoded(UNDECODABLE, str(exc), 0, time.perf_counter() - began)
    except av.error.FFmpegError as exc:  # one the probe does not expect: still the decoder's
        why = getattr(exc, "strerror", None) or str(exc)
        return Decoded(UNDECODABLE, f"decoder error: {why}", 0, time.perf_counter() - began)
    return Decoded("ok", None, facts.duration_ms, time.perf_counter() - began)


def record_decode(conn, sha256: str, decoded: Decoded, now: str) -> None:
    """One decode outcome into the ledger: decode_checks, and a "fixity" event when the file
    is undecodable or decodes again (a newer FFmpeg); the caller holds the transaction."""
    row = conn.execute("SELECT f.rowid, d.outcome FROM files f LEFT JOIN decode_checks d "
                       "ON d.file_id = f.rowid WHERE f.sha256 = ?", (sha256,)).fetchone()
    if row is None:  # the ledger row went away during the run (nothing to record it on)
        return
    file_id, before = row
    conn.execute("INSERT INTO decode_checks(file_id, checked_at, outcome, reason) "
                 "VALUES (?, ?, ?, ?) ON CONFLICT(file_id) DO UPDATE SET "
                 "checked_at = excluded.checked_at, outcome = excluded.outcome, "
                 "reason = excluded.reason", (file_id, now, decoded.outcome, decoded.reason))
    if decoded.outcome == UNDECODABLE:
        conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                     "VALUES (?, 'fixity', ?, ?, ?)",
                     (now, sha256, UNDECODABLE,
                      json.dumps({"by": BY, "detail": decoded.reason}, sort_keys=True)))
    elif before == UNDECODABLE:
        conn.execute("INSERT INTO events(at, kind, subject, outcome, detail) "
                     "VALUES (?, 'fixity', ?, 'ok', ?)",
                     (now, sha256, json.dumps({"by": BY, "was": UNDECODABLE})))
