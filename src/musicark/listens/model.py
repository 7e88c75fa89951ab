"""The listens model: observed listens where there are any, the popularity curve elsewhere,
re-fitted so both are on one scale.

Modes (`plan create --listens`):
- `model`: the popularity curve of musicark.toml (known catalog counts win), as before;
- `observed`: observed listens only (tracks nobody listened to count 0);
- `blend` (default): observed listens where a track has any; elsewhere the curve re-fitted
  on the tracks that have both a popularity ≥ 1 and observed listens (least squares of
  log listens on popularity), so a modelled track stands where its popularity puts it among
  observed ones. With no observed listens, blend is exactly `model`.

The fit is reported: how many tracks it rests on, Spearman's rank correlation of popularity
and observed listens, and the curve's error (median and RMS of |log10 predicted −
log10 observed|) on held-out tracks (every fifth, by rowid) of a fit made without them.
`--window 12m` counts only the listens of the last 12 months of the data.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from musicark.archive import Archive
from musicark.config import PopularityModel
from musicark.errors import BadQuery
from musicark.popularity import expected_listens

MODES = ("observed", "model", "blend")
MIN_FIT_TRACKS = 10  # fewer: keep the curve's slope, fit only its level
HOLDOUT_EVERY = 5


def parse_window(text: str | None) -> int | None:
    """'12m' → 12 months, '2y' → 24, None/'all' → no window."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([my])\s*", text.lower())
    if not found or int(found.group(1)) < 1:
        raise BadQuery(f"not a window: {text!r} (examples: 12m, 6m, 2y, all)")
    return int(found.group(1)) * (12 if found.group(2) == "y" else 1)


def _month_minus(yyyymm: int, months: int) -> int:
    index = (yyyymm // 100) * 12 + yyyymm % 100 - 1 - months
    return (index // 12) * 100 + index % 12 + 1


def observed(archive: Archive, window: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(track rowids, observed listens) for matched tracks, and the window used."""
    conn = archive.conn
    if not has_listens(archive):
        return np.empty(0, np.int64), np.empty(0), {"window_months": window,
                                                    "from_month": None, "to_month": None}
    latest = conn.execute("SELECT max(month) FROM listen_counts").fetchone()[0]
    since = _month_minus(latest, window - 1) if latest and window else 0
    rows = conn.execute(
        "SELECT k.track_rowid, sum(c.listens) FROM listen_counts c "
        "JOIN listen_keys k ON k.id = c.key_id "
        "WHERE k.track_rowid IS NOT NULL AND c.month >= ? GROUP BY k.track_rowid "
        "ORDER BY k.track_rowid", (since,)).fetchall()
    arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
    info = {"window_months": window, "from_month": since or None, "to_month": latest}
    return arr[:, 0], arr[:, 1].astype(np.float64), info


def has_listens(archive: Archive) -> bool:
    """Whether the catalog has listens tables (an archive opened read-only is not migrated:
    one made before listens existed has none until a write verb upgrades it)."""
    return archive.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'listen_counts'").fetchone() is not None


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _fit(p: np.ndarray, log_listens: np.ndarray, base: PopularityModel
         ) -> tuple[float, float, str]:
    """(a, b, method) of log listens = a + b·p; the level alone (the configured slope) when
    there are too few points, one popularity, or a slope that is not positive."""
    if len(p) >= MIN_FIT_TRACKS and np.unique(p).size >= 2:
        b, a = np.polyfit(p, log_listens, 1)
        if b > 0:
            return float(a), float(b), "least squares"
    return float(np.mean(log_listens - base.b * p)), base.b, "level only"


@dataclass
class Fit:
    method: str  # least squares | level only | none (no tracks with both)
    tracks: int
    spearman: float | None
    heldout_tracks: int
    heldout_median_abs_log10_error: float | None
    heldout_rms_log10_error: float | None
    curve: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refit(rowids: np.ndarray, popularity: np.ndarray, observed_listens: np.ndarray,
          base: PopularityModel) -> tuple[PopularityModel, Fit]:
    """The popularity curve re-fitted on the tracks with both, and its report."""
    both = (popularity >= 1) & (observed_listens > 0)
    p, y, ids = popularity[both].astype(np.float64), np.log(observed_listens[both]), rowids[both]
    if not len(p):
        return base, Fit("none", 0, None, 0, None, None, asdict(base))
    held = ids % HOLDOUT_EVERY == 0
    med = rms = None
    if held.any() and (~held).sum() >= 1:
        a, b, _ = _fit(p[~held], y[~held], base)
        err = np.abs((a + b * p[held]) - y[held]) / np.log(10)
        med, rms = float(np.median(err)), float(np.sqrt(np.mean(err ** 2)))
    a, b, method = _fit(p, y, base)
    # p = 0 keeps its ratio to p = 1 from the configured curve
    zero = base.zero_listens * np.exp((a + b) - (base.a + base.b))
    model = replace(base, a=a, b=b, zero_listens=float(zero))
    return model, Fit(method, int(len(p)), spearman(p, observed_listens[both]),
                      int(held.sum()), med, rms, asdict(model))


def plan_listens(archive: Archive, rowids: np.ndarray, popularity: np.ndarray,
                 known: np.ndarray, mode: str = "blend", window: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(listens the plan uses, observed listens, report) per track of `rowids` (sorted).

    `popularity` has NaN where unknown, `known` NaN where the catalog has no count."""
    if mode not in MODES:
        raise BadQuery(f"--listens must be one of {', '.join(MODES)}")
    base = archive.settings.popularity
    obs_ids, obs_counts, info = observed(archive, window)
    obs = np.zeros(len(rowids))
    if len(obs_ids):
        pos = np.searchsorted(rowids, obs_ids).clip(max=len(rowids) - 1)
        hit = rowids[pos] == obs_ids
        obs[pos[hit]] = obs_counts[hit]
    report: dict[str, Any] = {"mode": mode, **info, "observed_tracks": int((obs > 0).sum()),
                              "observed_listens": float(obs.sum())}
    if mode == "model" or (mode == "blend" and not obs.any()):
        return expected_listens(base, popularity, known), obs, report
    if mode == "observed":
        return obs.copy(), obs, report
    pop = np.where(np.isnan(popularity), -1, popularity)
    model, fit = refit(rowids, pop, obs, base)
    report["fit"] = fit.as_dict()
    scale = np.exp((model.a + model.b) - (base.a + base.b))
    curve = expected_listens(model, popularity, known * scale)
    return np.where(obs > 0, obs, curve), obs, report
