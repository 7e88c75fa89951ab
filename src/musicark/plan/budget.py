"""Budgeted selection: the most value for the bytes, in linear time.

A 0/1 knapsack solved greedily by value density. Instead of sorting every item (n log n, and
an 8-byte index per item), items are binned by log-density into 65,536 bins; whole bins are
taken densest first, and only the bin where the budget runs out is sorted. The LP relaxation
bound (the greedy with the boundary item taken fractionally) comes with it, so the gap of the
greedy answer to the optimum is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 1 << 16


@dataclass
class Selection:
    chosen: np.ndarray  # bool per item
    value: float
    cost: float
    lp_bound: float


def select(value: np.ndarray, cost: np.ndarray, budget: float,
           eligible: np.ndarray | None = None) -> Selection:
    """Items maximizing total value with total cost ≤ budget (greedy by value/cost)."""
    n = len(value)
    chosen = np.zeros(n, bool)
    ok = (cost > 0) & (value > 0)
    if eligible is not None:
        ok &= eligible
    free = (cost <= 0) & (value > 0) & (eligible if eligible is not None else True)
    chosen |= free
    idx = np.flatnonzero(ok)
    if not len(idx) or budget <= 0:
        return Selection(chosen, float(value[chosen].sum()), 0.0, float(value[chosen].sum()))
    density = np.log2(value[idx] / cost[idx])
    lo, hi = float(density.min()), float(density.max())
    scale = (BINS - 1) / (hi - lo) if hi > lo else 0.0
    bins = ((density - lo) * scale).astype(np.int64)  # denser = higher bin
    cost_by_bin = np.bincount(bins, weights=cost[idx], minlength=BINS)[::-1]
    spent = np.cumsum(cost_by_bin)
    whole = int(np.searchsorted(spent, budget, side="right"))  # bins that fit entirely
    boundary = BINS - 1 - whole
    take = bins > boundary
    chosen[idx[take]] = True
    used = float(cost[idx[take]].sum())
    bound = float(value[idx[take]].sum())
    if boundary >= 0:
        edge = idx[bins == boundary]
        edge = edge[np.argsort(-(value[edge] / cost[edge]), kind="stable")]
        room = budget - used
        fits = np.cumsum(cost[edge]) <= room
        prefix = edge[fits]
        chosen[prefix] = True
        used += float(cost[prefix].sum())
        bound += float(value[prefix].sum())
        rest = edge[~fits]
        if len(rest):  # the LP takes the first item that does not fit fractionally
            bound += float(value[rest[0]] * (budget - used) / cost[rest[0]])
        # Fill what is left with smaller items of the boundary bin that still fit (the bins
        # below are left alone: sorting them would cost n log n for a sliver of budget).
        room = budget - used
        small = rest[1:][cost[rest[1:]] <= room]
        if len(small) and room > 0:
            fits = np.cumsum(cost[small]) <= room
            chosen[small[fits]] = True
            used += float(cost[small[fits]].sum())
    return Selection(chosen, float(value[chosen].sum()), used, max(bound, float(
        value[chosen].sum())))
