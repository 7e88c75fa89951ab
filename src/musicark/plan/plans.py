"""Plans over an archive's catalog: inputs from the catalog and ledger, saved plans, coverage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicark.archive import Archive, utc_now
from musicark.errors import BadQuery
from musicark.listens.model import parse_window, plan_listens
from musicark.plan.durations import fill_unknown
from musicark.plan.planner import BITRATES, TIER_NAMES, PlanInput, PlanResult, make_plan
from musicark.units import parse_size

LOAD_SQL = """
    SELECT t.rowid, coalesce(t.popularity, -1), coalesce(t.listens, -1),
           coalesce(t.duration_ms, 0), t.isrc,
           coalesce(al.popularity, 0) * 1e9 + coalesce(ar.followers, 0),
           (SELECT max(f.size) FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid
             WHERE tf.track_rowid = t.rowid AND f.status = 'ok')
      FROM tracks t
      LEFT JOIN albums al ON al.rowid = t.album_rowid
      LEFT JOIN track_artists ta ON ta.track_rowid = t.rowid AND ta.position = 0
      LEFT JOIN artists ar ON ar.rowid = ta.artist_rowid
     ORDER BY t.rowid"""
CHUNK = 100_000


BASE36_LIMIT = 36 ** 12  # every 12-character ISRC is below this as a base-36 number


def isrc_code(isrc: str) -> int:
    """An ISRC as a number, with no table of seen codes (256 M of them would not fit in a
    dict): its 12 letters and digits read in base 36. Other identifiers get a 64-bit hash
    above that range, so they only ever group with themselves."""
    plain = "".join(c for c in isrc.upper() if c.isascii() and c.isalnum())
    if 0 < len(plain) <= 12:
        return int(plain, 36)
    digest = hashlib.blake2b(isrc.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return BASE36_LIMIT + int.from_bytes(digest, "big") % (2**63 - 1 - BASE36_LIMIT)


@dataclass
class Listens:
    """The listens a plan ranks by, the observed ones beside them, and how they were made."""

    observed: np.ndarray  # float64 per track, 0 where nobody listened (or no data)
    report: dict[str, Any]


def load_input(archive: Archive, *, listens: str = "blend", window: int | None = None
               ) -> tuple[np.ndarray, PlanInput]:
    """Track rowids and the planner's arrays, streamed from SQLite into preallocated numpy
    arrays (no Python object per track survives a chunk). `listens` and `window` choose the
    listens model (musicark.listens.model); its report is `PlanInput.listens_info`."""
    n = archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    if not n:
        raise BadQuery("the catalog is empty: import a catalog first")
    rowid = np.empty(n, np.int64)
    pop = np.empty(n, np.int8)
    known = np.empty(n, np.float64)
    duration = np.empty(n, np.int32)
    priority = np.empty(n, np.float32)
    sizes = np.empty(n, np.float64)
    isrc_ids = np.empty(n, np.int64)
    cur = archive.conn.execute(LOAD_SQL)
    at = 0
    while rows := cur.fetchmany(CHUNK):
        cols = list(zip(*rows, strict=True))
        end = at + len(rows)
        rowid[at:end], pop[at:end], known[at:end], duration[at:end] = cols[:4]
        isrc_ids[at:end] = [-1 if v is None else isrc_code(v) for v in cols[4]]
        priority[at:end] = cols[5]
        sizes[at:end] = [np.nan if v is None else v for v in cols[6]]
        at = end
    rowid, duration = rowid[:at], duration[:at]
    estimated = fill_unknown(archive, rowid, duration)
    expected, observed, report = plan_listens(
        archive, rowid, np.where(pop < 0, np.nan, pop)[:at],
        np.where(known < 0, np.nan, known)[:at], listens, window)
    modelled = duration / 1000 * BITRATES["original"] / 8
    return rowid, PlanInput(
        listens=expected[:at].astype(np.float32), popularity=pop[:at],
        duration_ms=duration,
        original_bytes=np.where(np.isnan(sizes[:at]), modelled, sizes[:at]).astype(np.float32),
        isrc_group=isrc_ids[:at], priority=priority[:at], estimated_durations=estimated,
        listens_info=Listens(observed, report))


def create_plan(archive: Archive, budget: str | float, *,
                tiers: tuple[str, ...] = ("original", "opus75"),
                isrc_dedup_below: int = 1, listens: str = "blend",
                window: str | None = None) -> tuple[int, dict[str, Any]]:
    """Plan the catalog for a budget, save it (plans, plan_items) and return (id, summary).

    `listens`: observed, model or blend (see musicark.listens.model); `window` such as
    '12m' counts only recent observed listens. Coverage of observed listens is reported
    whenever there are any."""
    unknown = set(tiers) - set(BITRATES)
    if unknown or not tiers:
        raise BadQuery(f"tiers must be among {', '.join(BITRATES)}")
    budget_bytes = parse_size(budget) if isinstance(budget, str) else float(budget)
    months = parse_window(window)
    rowids, inp = load_input(archive, listens=listens, window=months)
    result: PlanResult = make_plan(inp, budget_bytes, tiers=tiers,
                                   isrc_dedup_below=isrc_dedup_below)
    summary = {**result.summary(), "estimated_durations": inp.estimated_durations}
    info = inp.listens_info
    summary["listens_model"] = info.report
    if info.observed.any():
        kept = result.tier != 0
        summary["observed_coverage"] = float(info.observed[kept].sum() / info.observed.sum())
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        plan_id = conn.execute(
            "INSERT INTO plans(created_at, budget_bytes, options, summary) VALUES (?,?,?,?)",
            (utc_now(), budget_bytes, json.dumps({"tiers": list(tiers),
                                                  "isrc_dedup_below": isrc_dedup_below,
                                                  "listens": listens, "window": window}),
             json.dumps(summary))).lastrowid
        keep = np.flatnonzero(result.tier != 0)
        conn.executemany(
            "INSERT INTO plan_items(plan_id, track_rowid, tier, expected_listens, bytes) "
            "VALUES (?,?,?,?,?)",
            zip([plan_id] * len(keep), rowids[keep].tolist(),
                [TIER_NAMES[t] for t in result.tier[keep].tolist()],
                inp.listens[keep].tolist(), result.bytes_at(keep).tolist(), strict=True))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    archive.record_event("plan.create", str(plan_id), "ok", summary)
    return plan_id, summary
