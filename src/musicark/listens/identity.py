"""Stable 64-bit hashes over Arrow string columns, without a Python object per row.

A column is dictionary-encoded; only its distinct values are hashed (BLAKE2b, so hashes are
the same in every run and process, unlike Python's `hash`), then gathered back per row.
Listens repeat their users and tracks a lot, so the distinct values are few.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEP = "\x1f"
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def blake64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "little")


def encode(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """(per-row index into the distinct values, the distinct values); nulls become ''."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    enc = pc.dictionary_encode(pc.fill_null(arr, ""))
    return (enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            enc.dictionary.to_pylist())


def hash_column(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    idx, values = encode(column)
    hashes = np.fromiter((blake64(v) for v in values), np.uint64, len(values))
    return hashes[idx]


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * M1
        x = (x ^ (x >> np.uint64(27))) * M2
        return x ^ (x >> np.uint64(31))


def joined(*columns: pa.ChunkedArray | pa.Array, lower: bool = True) -> pa.Array:
    """The columns joined by SEP (nulls as ''), lower-cased: a per-row key."""
    parts = [pc.fill_null(c, "") for c in columns]
    if lower:
        parts = [pc.utf8_lower(p) for p in parts]
    out = pc.binary_join_element_wise(*parts, SEP)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def listen_ids(table: pa.Table) -> np.ndarray:
    """A listen's identity: (source user, timestamp, track as artist + title, any case)."""
    user = hash_column(table["user"])
    track = hash_column(joined(table["artist"], table["title"]))
    ts = table["ts"].to_numpy().astype(np.uint64)
    with np.errstate(over="ignore"):
        return mix(user ^ mix(track ^ (ts * GOLDEN)))


def months(ts: np.ndarray) -> np.ndarray:
    """Unix seconds → yyyymm."""
    m = ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    return (m // 12 + 1970) * 100 + m % 12 + 1
