"""The planner: per track, keep the original, an Opus derivative, or nothing, for a budget.

Objective, in order: listens covered, then quality. Step 1 covers tracks at their cheapest
tier, greedily by expected listens per byte (`budget.select`, with its LP bound). Step 2
spends what is left upgrading covered tracks to their original, by listens per extra byte.
In the long tail (popularity below `isrc_dedup_below`) tracks sharing an ISRC are one
recording: one file, on the track with the highest secondary priority (album popularity,
then artist followers), covers them all, as in the reference release.

The reference release's fixed rule at the same budget is computed alongside; if it ever
covered more, its selection would be used instead, so the plan never covers less.

Memory: inputs may be compact (float32 listens and sizes, int8 popularity, int32 durations
and ISRC ids); the planner works chunk by chunk and keeps about 5 bytes a track of its own
(a 2-byte bin, two 1-byte tiers, a 1-byte choice), so 256 M tracks plan in a few GB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicark.plan.budget import chunks, fill_in_order, select_columns

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
    isrc_group: np.ndarray  # ISRC id (any non-negative integer) per track, -1 where none
    priority: np.ndarray  # secondary priority within an ISRC (higher keeps the file)
    # how many lengths were estimated, by source (album, artist, catalog, typical)
    estimated_durations: dict[str, int] = field(default_factory=dict)
    listens_info: Any = None  # plans.Listens: observed listens and the model's report

    def __len__(self) -> int:
        return len(self.listens)

    def opus_bytes(self, sl: slice = slice(None)) -> np.ndarray:
        return self.duration_ms[sl].astype(np.float64) * (BITRATES["opus75"] / 8000 *
                                                          OPUS_OVERHEAD)

    def tier_bytes(self, tier: np.ndarray, sl: slice = slice(None)) -> np.ndarray:
        """What each track of `sl` costs at its tier (`tier` holds the slice's tiers)."""
        original = self.original_bytes[sl].astype(np.float64)
        return np.where(tier == TIER_ORIGINAL, original,
                        np.where(tier == TIER_OPUS, self.opus_bytes(sl), 0.0))


@dataclass
class PlanResult:
    tier: np.ndarray  # uint8 per track (TIER_*)
    inp: PlanInput
    budget: float
    covered_listens: float
    total_listens: float
    lp_bound: float
    used_bytes: float = 0.0
    by_tier: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    used_reference: bool = False

    @property
    def bytes(self) -> np.ndarray:
        """Per track, what it costs in this plan (computed on demand: 8 bytes a track)."""
        return self.inp.tier_bytes(self.tier)

    def bytes_at(self, idx: np.ndarray) -> np.ndarray:
        return self.inp.tier_bytes(self.tier[idx], idx)

    def summary(self) -> dict:
        return {
            "budget_bytes": self.budget, "coverage": self.covered_listens / self.total_listens
            if self.total_listens else None,
            "covered_listens": self.covered_listens, "total_listens": self.total_listens,
            "bytes": self.used_bytes, "lp_bound_coverage": self.lp_bound /
            self.total_listens if self.total_listens else None,
            "gap_to_lp_bound": (self.lp_bound - self.covered_listens) / self.lp_bound
            if self.lp_bound else 0.0,
            "tiers": self.by_tier, "reference_rule": self.reference,
            "used_reference_rule": self.used_reference,
        }


@dataclass
class Followers:
    """Tail tracks whose ISRC's file is kept on another track (`leader`), sorted by track."""

    track: np.ndarray
    leader: np.ndarray

    def extra_listens(self, listens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(leaders, the listens their followers add), leaders ascending."""
        if not len(self.track):
            return np.empty(0, np.int64), np.empty(0)
        order = np.argsort(self.leader)
        leader = self.leader[order]
        starts = np.flatnonzero(np.r_[True, leader[1:] != leader[:-1]])
        added = np.add.reduceat(listens[self.track[order]].astype(np.float64), starts)
        return leader[starts], added

    def zero(self, values: np.ndarray, sl: slice) -> None:
        """values[t - sl.start] = 0 for the followers t inside the slice."""
        lo, hi = _bounds(self.track, sl)
        values[self.track[lo:hi] - sl.start] = 0


def _bounds(sorted_idx: np.ndarray, sl: slice) -> tuple[int, int]:
    """Where the slice's indices start and end in a sorted index array. The bounds get the
    array's own dtype: with a Python list numpy would convert the whole array per call."""
    lo, hi = np.searchsorted(sorted_idx, np.array([sl.start, sl.stop], sorted_idx.dtype))
    return int(lo), int(hi)


def _descending_u32(values: np.ndarray) -> np.ndarray:
    """A uint32 per float whose ascending order is the floats' descending order (NaN last).
    Priorities are compared at float32 precision."""
    f = np.nan_to_num(values.astype(np.float32), nan=-np.inf)
    bits = f.view(np.uint32)
    ascending = bits ^ np.where(bits >> 31, np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    return ~ascending


def followers_of(inp: PlanInput, below: int) -> Followers:
    """For tail tracks sharing an ISRC, the one with the highest priority keeps the file
    (ties: the lowest index). One sort of a 64-bit key (group, priority), int32 indices."""
    tail = np.flatnonzero(inp.isrc_group >= 0)
    tail = tail[inp.popularity[tail] < below].astype(np.int32)
    if not len(tail):
        return Followers(np.empty(0, np.int32), np.empty(0, np.int32))
    groups = inp.isrc_group[tail]
    if groups.dtype.itemsize > 4 and len(groups) and int(groups.max()) >= 2**32:
        # 64-bit ISRC codes (plans.isrc_code): renumber the tail's groups densely.
        groups = np.unique(groups, return_inverse=True)[1]
    key = (groups.astype(np.uint64) << np.uint64(32)) | \
        _descending_u32(inp.priority[tail]).astype(np.uint64)
    del groups
    order = np.argsort(key)
    tail, key = tail[order], key[order]
    del order
    first = np.empty(len(tail), bool)  # the first row of each group
    first[0] = True
    np.not_equal(key[1:] >> np.uint64(32), key[:-1] >> np.uint64(32), out=first[1:])
    starts = np.flatnonzero(first)
    group = np.cumsum(first, dtype=np.int32) - 1
    # The leader: the lowest index among the rows with the group's highest priority.
    best = np.where(key == key[starts][group], tail, np.iinfo(np.int32).max)
    del key
    leader = np.minimum.reduceat(best, starts)[group]
    del best, group
    follows = tail != leader
    track, leader = tail[follows], leader[follows]
    by_track = np.argsort(track)
    return Followers(track[by_track], leader[by_track])


def representatives(inp: PlanInput, below: int) -> np.ndarray:
    """Per track, the index of the track whose file covers it (itself where none other)."""
    rep = np.arange(len(inp))
    f = followers_of(inp, below)
    rep[f.track] = f.leader
    return rep


def _chunk_add(values: np.ndarray, sl: slice, at: np.ndarray, added: np.ndarray) -> None:
    """values[at - sl.start] += added, for the sorted indices `at` inside the slice."""
    lo, hi = _bounds(at, sl)
    values[at[lo:hi] - sl.start] += added[lo:hi]


def make_plan(inp: PlanInput, budget: float, *, tiers: tuple[str, ...] = ("original", "opus75"),
              isrc_dedup_below: int = 1) -> PlanResult:
    n = len(inp)
    total = sum(float(inp.listens[sl].astype(np.float64).sum()) for sl in chunks(n))
    followers = followers_of(inp, isrc_dedup_below)
    leaders, added = followers.extra_listens(inp.listens)
    use_original, use_opus = "original" in tiers, "opus75" in tiers

    def costs(sl: slice) -> tuple[np.ndarray, np.ndarray]:
        original = inp.original_bytes[sl].astype(np.float64) if use_original else \
            np.full(sl.stop - sl.start, np.inf)
        opus = inp.opus_bytes(sl) if use_opus else np.full(sl.stop - sl.start, np.inf)
        return original, opus

    def value(sl: slice) -> np.ndarray:
        """A leader carries the listens of every track its file covers; followers none."""
        v = inp.listens[sl].astype(np.float64)
        _chunk_add(v, sl, leaders, added)
        followers.zero(v, sl)
        return v

    def cover_columns(sl: slice):
        original, opus = costs(sl)
        cheapest = np.minimum(original, opus)
        finite = np.isfinite(cheapest)
        return np.where(finite, value(sl), 0.0), np.where(finite, cheapest, 0.0)

    cover = select_columns(n, cover_columns, budget)
    tier = np.zeros(n, np.uint8)
    for sl in chunks(n):
        original, opus = costs(sl)
        tier[sl] = np.where(cover.chosen[sl], np.where(opus <= original, TIER_OPUS,
                                                       TIER_ORIGINAL), TIER_NONE)
    lp_bound, left = cover.lp_bound, budget - cover.cost
    del cover
    if left > 0 and use_original and use_opus:
        def upgrade_columns(sl: slice):
            original, opus = costs(sl)
            extra = original - opus
            can = (tier[sl] == TIER_OPUS) & np.isfinite(original) & (extra > 0)
            return np.where(can, value(sl), 0.0), np.where(can, extra, 0.0)

        upgrade = select_columns(n, upgrade_columns, left)
        tier[upgrade.chosen] = TIER_ORIGINAL
        del upgrade
    _mark_same_isrc(tier, followers)
    covered, used, by_tier = _tally(inp, tier)
    result = PlanResult(tier=tier, inp=inp, budget=budget, covered_listens=covered,
                        total_listens=total, lp_bound=lp_bound, used_bytes=used)
    ref_tier = reference_rule(inp, budget, followers, tiers)
    ref_covered, ref_used, ref_by_tier = _tally(inp, ref_tier)
    if ref_covered > covered:  # never cover less than the reference rule
        result.tier, result.covered_listens, result.used_bytes = ref_tier, ref_covered, ref_used
        result.used_reference, by_tier = True, ref_by_tier
    result.by_tier = _shares(by_tier, total)
    result.reference = {"coverage": ref_covered / total if total else None,
                        "bytes": ref_used, "tiers": _shares(ref_by_tier, total)}
    return result


def _mark_same_isrc(tier: np.ndarray, followers: Followers) -> None:
    covered = (tier[followers.leader] != TIER_NONE) & (tier[followers.track] == TIER_NONE)
    tier[followers.track[covered]] = TIER_SAME_ISRC


def reference_rule(inp: PlanInput, budget: float, followers: Followers,
                   tiers: tuple[str, ...] = ("original", "opus75")) -> np.ndarray:
    """The reference release's fixed rule, filled in its order until the budget runs out:
    originals for popularity > 0 (most popular first), then Opus for popularity 0, one file
    per ISRC there (highest secondary priority first)."""
    n = len(inp)
    tier = np.zeros(n, np.uint8)
    used = 0.0
    if "original" in tiers:
        def head(sl: slice):
            pop = inp.popularity[sl]
            original = inp.original_bytes[sl].astype(np.float64)
            return pop, (pop > 0) & np.isfinite(original), original

        chosen, used = fill_in_order(n, head, budget, small_integer_keys=True)
        tier[chosen] = TIER_ORIGINAL
        del chosen
    if "opus75" in tiers:
        def tail(sl: slice):
            ok = (inp.popularity[sl] <= 0).astype(np.uint8)
            followers.zero(ok, sl)
            return inp.priority[sl], ok.view(bool), inp.opus_bytes(sl)

        chosen, _ = fill_in_order(n, tail, budget - used)
        tier[chosen] = TIER_OPUS
    _mark_same_isrc(tier, followers)
    return tier


def _tally(inp: PlanInput, tier: np.ndarray) -> tuple[float, float, dict]:
    """Covered listens, bytes, and per tier (tracks, bytes, listens)."""
    counts, sizes, listens = np.zeros(4), np.zeros(4), np.zeros(4)
    for sl in chunks(len(inp)):
        t = tier[sl]
        counts += np.bincount(t, minlength=4)
        sizes += np.bincount(t, weights=inp.tier_bytes(t, sl), minlength=4)
        listens += np.bincount(t, weights=inp.listens[sl].astype(np.float64), minlength=4)
    per_tier = {t: (int(counts[t]), float(sizes[t]), float(listens[t])) for t in TIER_NAMES}
    return float(listens[1:].sum()), float(sizes.sum()), per_tier


def _shares(per_tier: dict, total: float) -> dict:
    return {TIER_NAMES[t]: {"tracks": c, "bytes": b, "listen_share": lst / (total or 1.0)}
            for t, (c, b, lst) in per_tier.items()}
