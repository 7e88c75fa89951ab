"""Stable 64-bit hashes of listens and listened items, with no Python object per row.

String columns are handled as dictionaries (Parquet dumps arrive dictionary-encoded; other
columns are encoded once): only the distinct values are lower-cased and hashed, by a
polynomial hash over the Arrow buffers computed in numpy, then gathered back per row and
combined with splitmix64's finalizer. The hashes are the same in every run and process
(unlike Python's `hash`); 64 bits keep collisions out of reach for the sizes concerned
(~10^-6 for ten million listens of one source in one month).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
BASE = 0x100000001B3  # odd, so it has an inverse modulo 2^64
BASE_INV = pow(BASE, -1, 1 << 64)
NULL_HASH = np.uint64(0x5BD1E9955BD1E995)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * M1
        x = (x ^ (x >> np.uint64(27))) * M2
        return x ^ (x >> np.uint64(31))


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, n: int) -> np.ndarray:
    """base^0 .. base^(n-1) modulo 2^64 (cached and grown: batches reuse them)."""
    have = _POWERS.get(base)
    if have is None or len(have) < n:
        size = max(n, 2 * len(have) if have is not None else 1 << 16)
        out = np.full(size, base, dtype=np.uint64)
        out[0] = 1
        with np.errstate(over="ignore"):
            have = _POWERS[base] = np.cumprod(out, dtype=np.uint64)
    return have[:n]


def hash_strings(arr: pa.Array) -> np.ndarray:
    """Per value of a string array (no nulls), a 64-bit hash of its UTF-8 bytes."""
    if pa.types.is_large_string(arr.type):
        off_type = np.int64
    else:
        arr = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
        off_type = np.int32
    n = len(arr)
    if n == 0:
        return np.empty(0, np.uint64)
    offsets = np.frombuffer(arr.buffers()[1], dtype=off_type)[arr.offset:arr.offset + n + 1]
    offsets = offsets.astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = arr.buffers()[2]
    raw = (np.frombuffer(data, dtype=np.uint8)[lo:hi] if data is not None
           else np.empty(0, np.uint8)).astype(np.uint64)
    starts = offsets[:-1] - lo
    lengths = np.diff(offsets)
    with np.errstate(over="ignore"):
        weighted = raw * _powers(BASE, hi - lo)
        sums = np.zeros(n, np.uint64)
        nonempty = lengths > 0
        if raw.size:
            sums[nonempty] = np.add.reduceat(weighted, starts[nonempty])
        # shift every string's sum to start at power 0: multiply by BASE^-start
        inv = _powers(BASE_INV, hi - lo + 1)
        local = sums * inv[starts]
        return mix(local ^ (lengths.astype(np.uint64) * GOLDEN))


@dataclass
class Coded:
    """A string column as per-row indices into its distinct values, and their hashes."""

    index: np.ndarray  # int64 per row; -1 where null
    values: pa.Array  # the distinct values (original case)
    hashes: np.ndarray  # uint64 per value, of the lower-cased value

    def row_hashes(self) -> np.ndarray:
        table = np.append(self.hashes, NULL_HASH)
        return table[self.index]  # -1 picks NULL_HASH

    def take(self, rows: np.ndarray) -> list:
        idx = self.index[rows]
        values = self.values.take(pa.array(np.where(idx < 0, 0, idx))).to_pylist() \
            if len(self.values) else [None] * len(idx)
        return [None if i < 0 else v for i, v in zip(idx.tolist(), values, strict=True)]

    def bad_values(self, test) -> np.ndarray:
        """Per row, whether its value fails `test` (an Arrow kernel over the values)."""
        if not len(self.values):
            return np.zeros(len(self.index), bool)
        per_value = np.asarray(pc.fill_null(test(self.values), False).to_numpy(
            zero_copy_only=False), bool)
        return np.append(per_value, False)[self.index]


def code(column: pa.Array | pa.ChunkedArray) -> Coded:
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    values = arr.dictionary
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    index = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)
    if arr.null_count:
        index = np.where(np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool),
                         index, -1)
    if values.null_count:  # a null inside the dictionary is a null row too
        valid = np.append(np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool),
                          False)
        index = np.where(valid[index], index, -1)
    lowered = pc.utf8_lower(pc.fill_null(values, ""))
    return Coded(index.astype(np.int64), values, hash_strings(lowered))


def combine(*hashes: np.ndarray) -> np.ndarray:
    """One hash from several per-row hashes, order-sensitive."""
    out = np.zeros(len(hashes[0]), np.uint64)
    with np.errstate(over="ignore"):
        for h in hashes:
            out = mix(out * GOLDEN ^ h)
    return out


def months(ts: np.ndarray) -> np.ndarray:
    """Unix seconds → yyyymm."""
    m = ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    return (m // 12 + 1970) * 100 + m % 12 + 1
