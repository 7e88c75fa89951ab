"""Plans over an archive's catalog: inputs from the catalog and ledger, saved plans, coverage."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicark.archive import Archive, utc_now
from musicark.errors import BadQuery
from musicark.listens.model import parse_window, plan_listens
from musicark.plan.columns import gather, isrc_codes, numeric_rows
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
ITEMS_CHUNK = 200_000  # plan_items rows bound from Python at a time


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


def read_columns(archive: Archive) -> dict[str, np.ndarray]:
    """The planner's catalog columns per track, by ascending rowid, read in bulk
    (plan.columns): rowid, popularity (-1 unknown), listens (-1 unknown), duration_ms (0
    unknown), isrc (plans.isrc_code, -1 none), priority (album popularity × 1e9 + first
    artist's followers) and size (largest ok file, NaN none)."""
    conn = archive.conn
    if conn.in_transaction:
        return _read_columns(conn)
    conn.execute("BEGIN")  # one snapshot across the separate column reads (WAL)
    try:
        return _read_columns(conn)
    finally:
        conn.execute("COMMIT")


def _read_columns(conn) -> dict[str, np.ndarray]:
    rowid, t = numeric_rows(conn, "tracks", "rowid", [
        "coalesce(popularity, -1)", "coalesce(listens, -1)", "coalesce(duration_ms, 0)",
        "coalesce(album_rowid, -1)"])
    album_rowid, album_pop = numeric_rows(conn, "albums", "rowid", ["coalesce(popularity, 0)"])
    artist_rowid, followers = numeric_rows(conn, "artists", "rowid", ["coalesce(followers, 0)"])
    track_rowid, first = numeric_rows(conn, "track_artists", "track_rowid", ["artist_rowid"],
                                      where="position = 0")
    first = gather(rowid, track_rowid, first[:, 0], -1.0).astype(np.int64)
    file_track, size = numeric_rows(conn, "track_files tf JOIN files f ON f.rowid = "
                                    "tf.file_rowid", "tf.track_rowid",
                                    ["coalesce(max(f.size), -1)"], where="f.status = 'ok'",
                                    group=True)
    size = gather(rowid, file_track, size[:, 0], -1.0)
    priority = (gather(t[:, 3].astype(np.int64), album_rowid, album_pop[:, 0], 0.0) * 1e9
                + gather(first, artist_rowid, followers[:, 0], 0.0))
    return {"rowid": rowid, "popularity": t[:, 0], "listens": t[:, 1],
            "duration_ms": t[:, 2], "isrc": isrc_codes(conn, rowid), "priority": priority,
            "size": np.where(size < 0, np.nan, size)}


def read_columns_by_row(archive: Archive) -> dict[str, np.ndarray]:
    """`read_columns` one row at a time through LOAD_SQL (≈ 4 s per 1 M tracks): the
    reference the bulk read is tested against."""
    n = archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    cols = {name: np.empty(n, np.float64) for name in
            ("popularity", "listens", "duration_ms", "priority", "size")}
    rowid, isrc = np.empty(n, np.int64), np.empty(n, np.int64)
    cur = archive.conn.execute(LOAD_SQL)
    at = 0
    while rows := cur.fetchmany(CHUNK):
        c = list(zip(*rows, strict=True))
        end = at + len(rows)
        rowid[at:end] = c[0]
        for name, values in zip(("popularity", "listens", "duration_ms"), c[1:4], strict=True):
            cols[name][at:end] = values
        isrc[at:end] = [-1 if v is None else isrc_code(v) for v in c[4]]
        cols["priority"][at:end] = c[5]
        cols["size"][at:end] = [np.nan if v is None else v for v in c[6]]
        at = end
    return {"rowid": rowid[:at], "isrc": isrc[:at], **{k: v[:at] for k, v in cols.items()}}


def load_input(archive: Archive, *, listens: str = "blend", window: int | None = None
               ) -> tuple[np.ndarray, PlanInput]:
    """Track rowids and the planner's arrays, read column-wise in bulk (`read_columns`: no
    Python object per track). `listens` and `window` choose the listens model
    (musicark.listens.model); its report is `PlanInput.listens_info`."""
    n = archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
    if not n:
        raise BadQuery("the catalog is empty: import a catalog first")
    cols = read_columns(archive)
    rowid = cols["rowid"]
    pop = cols["popularity"].astype(np.int8)
    known = cols["listens"]
    duration = cols["duration_ms"].astype(np.int32)
    sizes = cols["size"]
    estimated = fill_unknown(archive, rowid, duration)
    expected, observed, report = plan_listens(
        archive, rowid, np.where(pop < 0, np.nan, pop),
        np.where(known < 0, np.nan, known), listens, window)
    modelled = duration / 1000 * BITRATES["original"] / 8
    return rowid, PlanInput(
        listens=expected.astype(np.float32), popularity=pop, duration_ms=duration,
        original_bytes=np.where(np.isnan(sizes), modelled, sizes).astype(np.float32),
        isrc_group=cols["isrc"], priority=cols["priority"].astype(np.float32),
        estimated_durations=estimated, listens_info=Listens(observed, report))


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
        # In chunks: Python lists of every kept track (five values each) were the plan's
        # peak memory, ~7.5 GiB at 50 M tracks, on the way to ~37 GiB at 256 M.
        for start in range(0, len(keep), ITEMS_CHUNK):
            part = keep[start:start + ITEMS_CHUNK]
            conn.executemany(
                "INSERT INTO plan_items(plan_id, track_rowid, tier, expected_listens, bytes) "
                "VALUES (?,?,?,?,?)",
                zip(itertools.repeat(plan_id), rowids[part].tolist(),
                    [TIER_NAMES[t] for t in result.tier[part].tolist()],
                    inp.listens[part].tolist(), result.bytes_at(part).tolist()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    archive.record_event("plan.create", str(plan_id), "ok", summary)
    return plan_id, summary
