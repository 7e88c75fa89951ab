"""The popularity → expected listens model.

Sources give a listen count, a 0-100 popularity score, or both; a known count always wins.
Otherwise listens(p) = exp(a + b·p) for p ≥ 1 and `zero_listens` for p = 0. The defaults are
calibrated in docs/listens-model.md against the reference release's published statistics.
"""

from __future__ import annotations

import numpy as np

from musicark.config import PopularityModel


def expected_listens(model: PopularityModel, popularity, listens=None) -> np.ndarray:
    """Vectorized: known listens where given (not NaN/negative), else the curve's estimate."""
    p = np.asarray(popularity, dtype=np.float64)
    estimate = np.where(p >= 1, np.exp(model.a + model.b * np.clip(p, 0, 100)), model.zero_listens)
    estimate = np.where(np.isnan(p), model.zero_listens, estimate)
    if listens is None:
        return estimate
    known = np.asarray(listens, dtype=np.float64)
    return np.where(np.isnan(known) | (known < 0), estimate, known)
