"""Budgeted selection in linear time and little extra memory.

A 0/1 knapsack solved greedily by value density. Instead of sorting every item (n log n, and
an 8-byte index per item), items are binned by log-density into 65,535 bins; whole bins are
taken densest first, and only the bin where the budget runs out is sorted. The LP relaxation
bound (the greedy with the boundary item taken fractionally) comes with it, so the gap of the
greedy answer to the optimum is known.

Columns come chunk by chunk from a function and are read in three passes, so a 256 M-item
selection holds only a 2-byte bin and a 1-byte choice per item. `fill_in_order` takes items
in a fixed key order until the budget runs out the same way (the reference release's rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

BINS = (1 << 16) - 1
OUT = np.uint16(BINS)  # the bin of items that take no part
CHUNK = 1 << 20  # items per chunk: temporaries stay in cache, not the whole catalog

# (slice) -> (key, candidate mask, cost, value) as arrays for that slice; higher key first
Columns = Callable[[slice], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def chunks(n: int, size: int | None = None) -> Iterator[slice]:
    size = size or CHUNK
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


@dataclass
class Selection:
    chosen: np.ndarray  # bool per item
    value: float
    cost: float
    lp_bound: float


@dataclass
class _Prefix:
    chosen: np.ndarray  # whole bins above the boundary
    cost: float
    value: float
    edge: np.ndarray  # boundary-bin items, by key descending then index
    edge_cost: np.ndarray
    edge_value: np.ndarray
    edge_key: np.ndarray


def _binned_prefix(n: int, columns: Columns, budget: float
                   ) -> tuple[_Prefix, np.ndarray | None, float]:
    """Also returns the items that cost nothing (cost ≤ 0, value > 0, not candidates; None
    when there are none, the usual case) and their value, found in the first pass."""
    lo, hi = np.inf, -np.inf
    free: np.ndarray | None = None
    free_value = 0.0
    for sl in chunks(n):  # pass 1: the key range, and the free items
        key, ok, cost, value = columns(sl)
        if ok.any():
            lo = min(lo, float(np.where(ok, key, np.inf).min()))
            hi = max(hi, float(np.where(ok, key, -np.inf).max()))
        f = ~ok & (cost <= 0) & (value > 0)
        if f.any():
            if free is None:
                free = np.zeros(n, bool)
            free[sl] = f
            free_value += float(value[f].sum())
    chosen = np.zeros(n, bool)
    empty = np.empty(0)
    if lo > hi or budget <= 0:
        return (_Prefix(chosen, 0.0, 0.0, np.empty(0, np.int64), empty, empty, empty), free,
                free_value)
    scale = (BINS - 1) / (hi - lo) if hi > lo else 0.0
    bins = np.empty(n, np.uint16)
    cost_by_bin = np.zeros(BINS + 1)
    value_by_bin = np.zeros(BINS + 1)
    with np.errstate(invalid="ignore"):
        for sl in chunks(n):  # pass 2: bins, and the cost and value of each bin
            key, ok, cost, value = columns(sl)
            b = np.where(ok, (key - lo) * scale, BINS).astype(np.uint16)
            bins[sl] = b
            # Non-candidates land in bin OUT (= BINS), whatever their weights: never read.
            cost_by_bin += np.bincount(b, weights=cost, minlength=BINS + 1)
            value_by_bin += np.bincount(b, weights=value, minlength=BINS + 1)
    spent = np.cumsum(cost_by_bin[BINS - 1::-1])
    whole = int(np.searchsorted(spent, budget, side="right"))  # bins that fit entirely
    boundary = BINS - 1 - whole
    parts: list[tuple[np.ndarray, ...]] = []
    for sl in chunks(n):  # pass 3: the choice, and the boundary bin's items
        b = bins[sl]
        chosen[sl] = (b > boundary) & (b != OUT)
        at = np.flatnonzero(b == boundary) if boundary >= 0 else []
        if len(at):
            key, _, cost, value = columns(sl)
            parts.append((at + sl.start, key[at], cost[at], value[at]))
    del bins
    if parts:
        edge, key, cost, value = (np.concatenate(p) for p in zip(*parts, strict=True))
        order = np.argsort(-key, kind="stable")
        edge, key, cost, value = edge[order], key[order], cost[order], value[order]
    else:
        edge, key, cost, value = np.empty(0, np.int64), empty, empty, empty
    top = slice(boundary + 1, BINS)
    return (_Prefix(chosen, float(cost_by_bin[top].sum()), float(value_by_bin[top].sum()),
                    edge, cost, value, key), free, free_value)


def select_columns(n: int, value_cost: Callable[[slice], tuple[np.ndarray, np.ndarray]],
                   budget: float) -> Selection:
    """Items maximizing total value with total cost ≤ budget (greedy by value/cost).
    `value_cost(slice)` gives float64 arrays; a value ≤ 0 marks a non-candidate."""
    def columns(sl: slice):
        value, cost = value_cost(sl)
        ok = (cost > 0) & (value > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            density = np.log2(value / cost)
        return density, ok, cost, value

    p, free, free_value = _binned_prefix(n, columns, budget)
    chosen, used, total, bound = p.chosen, p.cost, p.value, p.value
    if len(p.edge):
        fits = np.cumsum(p.edge_cost) <= budget - used
        chosen[p.edge[fits]] = True
        used += float(p.edge_cost[fits].sum())
        total += float(p.edge_value[fits].sum())
        bound = total
        rest = np.flatnonzero(~fits)
        if len(rest):  # the LP takes the first item that does not fit fractionally
            first = rest[0]
            bound += float(p.edge_value[first] * (budget - used) / p.edge_cost[first])
            # Fill what is left with smaller items of the boundary bin that still fit (bins
            # below are left alone: sorting them would cost n log n for a sliver of budget).
            later = rest[1:][p.edge_cost[rest[1:]] <= budget - used]
            take = later[np.cumsum(p.edge_cost[later]) <= budget - used]
            chosen[p.edge[take]] = True
            used += float(p.edge_cost[take].sum())
            total += float(p.edge_value[take].sum())
    if free is not None:
        chosen |= free
    total += free_value
    return Selection(chosen, total, used, max(bound + free_value, total))


def select(value: np.ndarray, cost: np.ndarray, budget: float,
           eligible: np.ndarray | None = None) -> Selection:
    """`select_columns` over in-memory arrays."""
    value = np.asarray(value, np.float64)
    cost = np.asarray(cost, np.float64)

    def value_cost(sl: slice):
        v = value[sl] if eligible is None else np.where(eligible[sl], value[sl], 0.0)
        return v, cost[sl]

    return select_columns(len(value), value_cost, budget)


def fill_in_order(n: int, key_cost: Callable[[slice], tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]],
                  budget: float, *, small_integer_keys: bool = False
                  ) -> tuple[np.ndarray, float]:
    """Candidates by descending key (ties: lower index first), each taken while the running
    total of costs stays within the budget; the first that does not fit ends it.
    `key_cost(slice)` gives (key, candidate mask, cost). Returns (chosen, cost).

    With `small_integer_keys` (a 0-100 popularity, say) each key value is its own bin, so
    the boundary value's items are already in order: they are streamed, never gathered.
    """
    if small_integer_keys:
        return _fill_by_integer_key(n, key_cost, budget)

    def columns(sl: slice):
        key, ok, cost = key_cost(sl)
        return key.astype(np.float64), ok, cost, cost

    p, _, _ = _binned_prefix(n, columns, budget)
    used = p.cost
    if len(p.edge):
        fits = np.cumsum(p.edge_cost) <= budget - used
        stop = len(fits) if fits.all() else int(np.argmin(fits))
        p.chosen[p.edge[:stop]] = True
        used += float(p.edge_cost[:stop].sum())
    return p.chosen, used


def _fill_by_integer_key(n: int, key_cost: Callable[[slice], tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]],
                         budget: float) -> tuple[np.ndarray, float]:
    lo, hi = None, None
    for sl in chunks(n):
        key, ok, _ = key_cost(sl)
        if ok.any():
            k = key[ok]
            lo = int(k.min()) if lo is None else min(lo, int(k.min()))
            hi = int(k.max()) if hi is None else max(hi, int(k.max()))
    chosen = np.zeros(n, bool)
    if lo is None or budget <= 0:
        return chosen, 0.0
    cost_by_key = np.zeros(hi - lo + 1)
    for sl in chunks(n):
        key, ok, cost = key_cost(sl)
        cost_by_key += np.bincount(key[ok].astype(np.int64) - lo, weights=cost[ok],
                                   minlength=hi - lo + 1)
    spent = np.cumsum(cost_by_key[::-1])
    whole = int(np.searchsorted(spent, budget, side="right"))  # key values that fit whole
    boundary = hi - whole  # the key value where the budget runs out (< lo: none)
    used = float(spent[whole - 1]) if whole else 0.0
    open_boundary = boundary >= lo
    for sl in chunks(n):
        key, ok, cost = key_cost(sl)
        chosen[sl] = ok & (key > boundary)
        if open_boundary:
            at = np.flatnonzero(ok & (key == boundary))
            fits = np.cumsum(cost[at]) <= budget - used
            take = at[:len(fits) if fits.all() else int(np.argmin(fits))]
            chosen[sl][take] = True
            used += float(cost[take].sum())
            open_boundary = len(take) == len(at)  # the first that does not fit ends it
    return chosen, used
