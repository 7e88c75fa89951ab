"""The planner: per track, keep the original, an Opus derivative, or nothing, for a budget.

Objective, in order: listens covered, then quality. Step 1 covers tracks at their cheapest
tier, greedily by expected listens per byte (`budget.select`, with its LP bound). Step 2
spends what is left upgrading covered tracks to their original, by listens per extra byte.
In the long tail (popularity below `isrc_dedup_below`) tracks sharing an ISRC are one
recording: one file, on the track with the highest secondary priority (album popularity,
then artist followers), covers them all, as in the reference release.

The reference release's fixed rule at the same budget is computed alongside; if it ever
covered more, its selection would be used instead, so the plan never covers less.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musicark.plan.budget import select

TIER_NONE, TIER_OPUS, TIER_ORIGINAL, TIER_SAME_ISRC = 0, 1, 2, 3
TIER_NAMES = {TIER_NONE: "skip", TIER_OPUS: "opus75", TIER_ORIGINAL: "original",
              TIER_SAME_ISRC: "same-isrc"}
BITRATES = {"original": 160_000, "opus75": 75_000}  # bits/s, when the real size is unknown
OPUS_OVERHEAD = 1.01  # Ogg pages and headers


@dataclass
class PlanInput:
    """Column arrays, one entry per track."""

    listens: np.ndarray  # expected listens (known counts, else the model)
    popularity: np.ndarray  # -1 where unknown
    duration_ms: np.ndarray
    original_bytes: np.ndarray  # real file size where the ledger has it, else the model
    isrc_group: np.ndarray  # ISRC id per track, -1 where none
    priority: np.ndarray  # secondary priority within an ISRC (higher keeps the file)

    def opus_bytes(self) -> np.ndarray:
        return self.duration_ms.astype(np.float64) / 1000 * BITRATES["opus75"] / 8 * \
            OPUS_OVERHEAD


@dataclass
class PlanResult:
    tier: np.ndarray  # uint8 per track (TIER_*)
    bytes: np.ndarray  # float64 per track: what it costs in this plan
    budget: float
    covered_listens: float
    total_listens: float
    lp_bound: float
    by_tier: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    used_reference: bool = False

    def summary(self) -> dict:
        return {
            "budget_bytes": self.budget, "coverage": self.covered_listens / self.total_listens
            if self.total_listens else None,
            "covered_listens": self.covered_listens, "total_listens": self.total_listens,
            "bytes": float(self.bytes.sum()), "lp_bound_coverage": self.lp_bound /
            self.total_listens if self.total_listens else None,
            "gap_to_lp_bound": (self.lp_bound - self.covered_listens) / self.lp_bound
            if self.lp_bound else 0.0,
            "tiers": self.by_tier, "reference_rule": self.reference,
            "used_reference_rule": self.used_reference,
        }


def representatives(inp: PlanInput, below: int) -> np.ndarray:
    """For tail tracks sharing an ISRC: index of the track that keeps the file (self if none)."""
    n = len(inp.listens)
    rep = np.arange(n)
    tail = (inp.isrc_group >= 0) & (inp.popularity < below)
    idx = np.flatnonzero(tail)
    if not len(idx):
        return rep
    # Sort by (group, -priority, index): the first of each group is its representative.
    order = idx[np.lexsort((idx, -inp.priority[idx], inp.isrc_group[idx]))]
    groups = inp.isrc_group[order]
    first = np.r_[True, groups[1:] != groups[:-1]]
    leader = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
    rep[order] = leader
    return rep


def make_plan(inp: PlanInput, budget: float, *, tiers: tuple[str, ...] = ("original", "opus75"),
              isrc_dedup_below: int = 1) -> PlanResult:
    n = len(inp.listens)
    listens = inp.listens.astype(np.float64)
    rep = representatives(inp, isrc_dedup_below)
    is_rep = rep == np.arange(n)
    # A representative carries the listens of every track its file covers.
    value = np.bincount(rep, weights=listens, minlength=n)
    original = inp.original_bytes.astype(np.float64)
    opus = inp.opus_bytes() if "opus75" in tiers else np.full(n, np.inf)
    if "original" not in tiers:
        original = np.full(n, np.inf)
    cheapest = np.minimum(original, opus)
    cover = select(value, np.where(np.isfinite(cheapest), cheapest, 0), budget,
                   eligible=is_rep & np.isfinite(cheapest))
    tier = np.where(cover.chosen, np.where(opus <= original, TIER_OPUS, TIER_ORIGINAL),
                    TIER_NONE).astype(np.uint8)
    cost = np.where(cover.chosen, cheapest, 0.0)
    left = budget - cover.cost
    if left > 0 and "original" in tiers and "opus75" in tiers:
        can = cover.chosen & (tier == TIER_OPUS) & np.isfinite(original)
        extra = np.where(can, original - opus, 0.0)
        upgrade = select(value, extra, left, eligible=can & (extra > 0))
        tier[upgrade.chosen & can] = TIER_ORIGINAL
        cost = np.where(tier == TIER_ORIGINAL, original, cost)
    covered_by = tier[rep] != TIER_NONE
    tier[~is_rep & covered_by] = TIER_SAME_ISRC
    covered = float(listens[tier != TIER_NONE].sum())
    result = PlanResult(tier=tier, bytes=cost, budget=budget, covered_listens=covered,
                        total_listens=float(listens.sum()), lp_bound=cover.lp_bound)
    ref_tier, ref_cost = reference_rule(inp, budget, rep, original, inp.opus_bytes())
    ref_covered = float(listens[ref_tier != TIER_NONE].sum())
    if ref_covered > covered:  # never cover less than the reference rule
        result.tier, result.bytes, result.covered_listens = ref_tier, ref_cost, ref_covered
        result.used_reference = True
    result.by_tier = _by_tier(result.tier, result.bytes, listens)
    result.reference = {"coverage": ref_covered / result.total_listens if result.total_listens
                        else None, "bytes": float(ref_cost.sum()),
                        "tiers": _by_tier(ref_tier, ref_cost, listens)}
    return result


def reference_rule(inp: PlanInput, budget: float, rep: np.ndarray, original: np.ndarray,
                   opus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference release's fixed rule, filled in its order until the budget runs out:
    originals for popularity > 0 (most popular first), then Opus for popularity 0, one file
    per ISRC there (highest secondary priority first)."""
    n = len(inp.listens)
    tier = np.zeros(n, np.uint8)
    cost = np.zeros(n)
    pop = inp.popularity
    head = np.flatnonzero((pop > 0) & np.isfinite(original))
    head = head[np.argsort(-pop[head], kind="stable")]
    fits = np.cumsum(original[head]) <= budget
    tier[head[fits]] = TIER_ORIGINAL
    cost[head[fits]] = original[head[fits]]
    left = budget - float(cost.sum())
    tail = np.flatnonzero((pop <= 0) & (rep == np.arange(n)))
    tail = tail[np.argsort(-inp.priority[tail], kind="stable")]
    fits = np.cumsum(opus[tail]) <= left
    tier[tail[fits]] = TIER_OPUS
    cost[tail[fits]] = opus[tail[fits]]
    dup = (rep != np.arange(n)) & (tier[rep] != TIER_NONE) & (tier == TIER_NONE)
    tier[dup] = TIER_SAME_ISRC
    return tier, cost


def _by_tier(tier: np.ndarray, cost: np.ndarray, listens: np.ndarray) -> dict:
    total = float(listens.sum()) or 1.0
    counts = np.bincount(tier, minlength=4)
    sizes = np.bincount(tier, weights=cost, minlength=4)
    shares = np.bincount(tier, weights=listens, minlength=4) / total
    return {TIER_NAMES[t]: {"tracks": int(counts[t]), "bytes": float(sizes[t]),
                            "listen_share": float(shares[t])} for t in TIER_NAMES}
