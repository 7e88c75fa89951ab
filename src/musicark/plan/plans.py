"""Plans over an archive's catalog: inputs from the catalog and ledger, saved plans, coverage."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from musicark.archive import Archive, utc_now
from musicark.errors import BadQuery
from musicark.plan.listens import expected_listens
from musicark.plan.planner import BITRATES, TIER_NAMES, PlanInput, PlanResult, make_plan

UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}


def parse_size(text: str) -> float:
    """'40TB' → 4e13 bytes; decimal (TB) and binary (TiB) units."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in UNITS:
        raise BadQuery(f"not a size: {text!r} (examples: 500GB, 40TB, 2TiB)")
    return float(match.group(1)) * UNITS[match.group(2).upper()]


def load_input(archive: Archive) -> tuple[np.ndarray, PlanInput]:
    """Track rowids and the planner's arrays, straight from SQLite (one pass over tracks)."""
    rows = archive.conn.execute("""
        SELECT t.rowid, coalesce(t.popularity, -1), coalesce(t.listens, -1),
               coalesce(t.duration_ms, 0), t.isrc,
               coalesce(al.popularity, 0) * 1e9 + coalesce(ar.followers, 0),
               (SELECT max(f.size) FROM track_files tf JOIN files f ON f.rowid = tf.file_rowid
                 WHERE tf.track_rowid = t.rowid AND f.status = 'ok')
          FROM tracks t
          LEFT JOIN albums al ON al.rowid = t.album_rowid
          LEFT JOIN track_artists ta ON ta.track_rowid = t.rowid AND ta.position = 0
          LEFT JOIN artists ar ON ar.rowid = ta.artist_rowid
         ORDER BY t.rowid""").fetchall()
    if not rows:
        raise BadQuery("the catalog is empty: import a catalog first")
    rowid, pop, listens, duration, isrc, priority, size = zip(*rows, strict=True)
    pop_a = np.array(pop, np.int16)
    known = np.array(listens, np.float64)
    expected = expected_listens(archive.settings.popularity,
                                np.where(pop_a < 0, np.nan, pop_a),
                                np.where(known < 0, np.nan, known))
    duration_a = np.array(duration, np.float64)
    modelled = duration_a / 1000 * BITRATES["original"] / 8
    sizes = np.array([s if s is not None else np.nan for s in size], np.float64)
    isrc_ids = _factorize(isrc)
    return np.array(rowid, np.int64), PlanInput(
        listens=expected, popularity=pop_a, duration_ms=duration_a,
        original_bytes=np.where(np.isnan(sizes), modelled, sizes), isrc_group=isrc_ids,
        priority=np.array(priority, np.float64))


def _factorize(values: tuple) -> np.ndarray:
    ids: dict[str, int] = {}
    return np.array([-1 if v is None else ids.setdefault(v, len(ids)) for v in values],
                    np.int64)


def create_plan(archive: Archive, budget: str | float, *,
                tiers: tuple[str, ...] = ("original", "opus75"),
                isrc_dedup_below: int = 1) -> tuple[int, dict[str, Any]]:
    """Plan the catalog for a budget, save it (plans, plan_items) and return (id, summary)."""
    unknown = set(tiers) - set(BITRATES)
    if unknown or not tiers:
        raise BadQuery(f"tiers must be among {', '.join(BITRATES)}")
    budget_bytes = parse_size(budget) if isinstance(budget, str) else float(budget)
    rowids, inp = load_input(archive)
    result: PlanResult = make_plan(inp, budget_bytes, tiers=tiers,
                                   isrc_dedup_below=isrc_dedup_below)
    summary = result.summary()
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        plan_id = conn.execute(
            "INSERT INTO plans(created_at, budget_bytes, options, summary) VALUES (?,?,?,?)",
            (utc_now(), budget_bytes, json.dumps({"tiers": list(tiers),
                                                  "isrc_dedup_below": isrc_dedup_below}),
             json.dumps(summary))).lastrowid
        keep = np.flatnonzero(result.tier != 0)
        conn.executemany(
            "INSERT INTO plan_items(plan_id, track_rowid, tier, expected_listens, bytes) "
            "VALUES (?,?,?,?,?)",
            zip([plan_id] * len(keep), rowids[keep].tolist(),
                [TIER_NAMES[t] for t in result.tier[keep].tolist()],
                inp.listens[keep].tolist(), result.bytes[keep].tolist(), strict=True))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    archive.record_event("plan.create", str(plan_id), "ok", summary)
    return plan_id, summary
