"""Key → rowid resolution for imports, in constant memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CACHE_SIZE = 200_000


class KeyHashes:
    """A set of 64-bit key hashes in a sorted numpy array (8 bytes a key): answers "certainly
    never added" for most new keys, so only possible repeats cost a database lookup."""

    RECENT = 1 << 16

    def __init__(self) -> None:
        self._sorted = np.zeros(0, np.int64)
        self._recent: set[int] = set()

    def add(self, keys: list[Any]) -> None:
        self._recent.update(hash(k) for k in keys)
        if len(self._recent) > self.RECENT:
            merged = np.concatenate([self._sorted, np.fromiter(self._recent, np.int64)])
            merged.sort()
            self._sorted, self._recent = merged, set()

    def maybe_known(self, keys: list[Any], positions: list[int]) -> list[int]:
        """The positions whose key may have been added (a hash seen before)."""
        hashes = np.fromiter((hash(k) for k in keys), np.int64, len(keys))
        at = np.searchsorted(self._sorted, hashes)
        hit = self._sorted[np.minimum(at, len(self._sorted) - 1)] == hashes if len(
            self._sorted) else np.zeros(len(hashes), bool)
        recent = self._recent
        return [p for p, h, k in zip(positions, hit, hashes.tolist(), strict=True)
                if h or k in recent]


class KeyResolver:
    """Maps a natural key (an external id, or a name key) to a rowid in constant memory.

    Two generations of dicts make a cheap LRU; keys dropped from it are found again with
    one indexed query per batch of misses.
    """

    def __init__(self, lookup: Callable[[list[Any]], dict[Any, int]]) -> None:
        self._lookup = lookup
        self._young: dict[Any, int] = {}
        self._old: dict[Any, int] = {}
        self.pending: dict[Any, int] = {}
        # Keys live only in this import's new source: until the cache first drops keys, a
        # miss in the cache is a miss in the database too, and needs no query. After that,
        # 64-bit hashes of every key added tell "certainly new" keys apart without a query.
        self.complete = True
        self._hashes = KeyHashes()

    def get(self, key: Any) -> int | None:
        return self.get_many([key])[0]

    def get_many(self, keys: list[Any]) -> list[int | None]:
        young, old, pending = self._young, self._old, self.pending
        found: list[int | None] = []
        misses = []
        for i, key in enumerate(keys):
            rowid = young.get(key)
            if rowid is None:
                rowid = old.get(key)
                if rowid is None:
                    rowid = pending.get(key)
                    if rowid is None:
                        misses.append(i)
                if rowid is not None:
                    young[key] = rowid
            found.append(rowid)
        if misses and not self.complete:
            misses = self._hashes.maybe_known([keys[i] for i in misses], misses)
        if misses and not self.complete:
            looked_up = self._lookup([keys[i] for i in misses])
            for i in misses:
                found[i] = looked_up.get(keys[i])
                if found[i] is not None:
                    young[keys[i]] = found[i]
        self._trim()
        return found

    def add(self, key: Any, rowid: int) -> None:
        self.pending[key] = rowid
        self._young[key] = rowid
        self._hashes.add([key])
        self._trim()

    def add_many(self, keys: list[Any], rowids: list[int], *, pending: bool = True) -> None:
        pairs = dict(zip(keys, rowids, strict=True))
        if pending:
            self.pending.update(pairs)
        self._young.update(pairs)
        self._hashes.add(keys)
        self._trim()

    def _trim(self) -> None:
        if len(self._young) > CACHE_SIZE // 2:
            self._old = self._young
            self._young = {}
            self.complete = False


class HashedRowids:
    """64-bit hashes of keys with the rowid that first held each, in sorted levels merged as
    they grow (an LSM tree in numpy): adding n keys costs O(n log n) in all, a lookup a few
    binary searches. Lets a fresh import find repeated keys without a unique index that is
    updated row by row (random B-tree inserts, the slowest part of a large import)."""

    def __init__(self) -> None:
        self.levels: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, hashes: np.ndarray, rowids: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        level = (hashes[order], rowids[order])
        while self.levels and len(self.levels[-1][0]) <= 2 * len(level[0]):
            old_h, old_r = self.levels.pop()
            merged_h = np.concatenate([old_h, level[0]])
            merged_r = np.concatenate([old_r, level[1]])
            order = np.argsort(merged_h, kind="stable")
            level = (merged_h[order], merged_r[order])
        self.levels.append(level)

    def candidates(self, hashes: np.ndarray) -> list[tuple[int, int]]:
        """(position in `hashes`, rowid) for every earlier key with the same hash."""
        found: list[tuple[int, int]] = []
        for level_h, level_r in self.levels:
            lo = np.searchsorted(level_h, hashes, side="left")
            hi = np.searchsorted(level_h, hashes, side="right")
            for pos in np.flatnonzero(hi > lo).tolist():
                found.extend((pos, int(r)) for r in level_r[lo[pos]:hi[pos]].tolist())
        return found
