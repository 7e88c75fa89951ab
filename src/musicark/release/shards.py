"""Popularity buckets, shard grouping and piece sizes.

The reference release grouped by popularity: one group for 50-100, then one per score below.
Shards hold one bucket's files in path order, cut where the next file would pass the size or
file limit; a later release continues a bucket with new shards, never reopens an old one.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from musicark.errors import BadQuery
from musicark.release.items import ReleaseItem

REFERENCE_BUCKETS: tuple[int, ...] = (50, *range(49, -1, -1))
MIN_PIECE = 16 * 1024
MAX_PIECE = 16 * 1024 * 1024
TARGET_PIECES = 1500


@dataclass(frozen=True)
class Bucket:
    name: str
    low: int | None  # None: tracks without a popularity score
    high: int | None


def parse_buckets(text: str | None) -> tuple[int, ...]:
    """`"50,20,0"` → lower bounds, highest first; None → the reference's buckets."""
    if not text:
        return REFERENCE_BUCKETS
    try:
        bounds = sorted({int(x) for x in text.split(",") if x.strip()}, reverse=True)
    except ValueError as exc:
        raise BadQuery(f"--buckets takes popularity lower bounds like 50,20,0: {exc}") from exc
    if not bounds or bounds[-1] != 0 or bounds[0] > 100:
        raise BadQuery("--buckets must be within 0-100 and end with 0 (every score has a bucket)")
    return tuple(bounds)


def bucket_of(popularity: int | None, bounds: Sequence[int]) -> Bucket:
    if popularity is None:
        return Bucket("popularity-unknown", None, None)
    high = 100
    for low in bounds:
        if popularity >= low:
            name = f"popularity-{low}" if low == high else f"popularity-{low}-to-{high}"
            return Bucket(name, low, high)
        high = low - 1
    raise AssertionError("bounds end with 0")


def bucket_rank(bucket: Bucket) -> int:
    """Most popular buckets first; unknown popularity last."""
    return -(bucket.low if bucket.low is not None else -1)


@dataclass
class Shard:
    name: str
    bucket: Bucket
    entries: list[tuple[tuple[str, ...], ReleaseItem]] = field(default_factory=list)
    size: int = 0  # payload and restore-patch bytes
    num_files: int = 0

    def add(self, parts: tuple[str, ...], item: ReleaseItem) -> None:
        self.entries.append((parts, item))
        self.size += item.size + item.patch_size
        self.num_files += 1 + bool(item.patch_sha256)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "archive"


def group_shards(placed: Iterable[tuple[tuple[str, ...], ReleaseItem, Bucket]], *,
                 prefix: str, max_bytes: int, max_files: int, next_number: dict[str, int]
                 ) -> Iterator[Shard]:
    """Cut files, given in shard order (bucket, then path), into shards within the limits,
    yielding each when it is full: one shard in memory at a time.

    `next_number` maps a bucket to the first free shard number (earlier releases used the
    ones below), so names stay unique across releases.
    """
    current: Shard | None = None
    for parts, item, bucket in placed:
        cost, files = item.size + item.patch_size, 1 + bool(item.patch_sha256)
        if (current is None or current.bucket != bucket
                or (current.entries and (current.size + cost > max_bytes
                                         or current.num_files + files > max_files))):
            if current is not None:
                yield current
            number = next_number.get(bucket.name, 1)
            next_number[bucket.name] = number + 1
            current = Shard(f"{prefix}-{bucket.name}-{number:04d}", bucket)
        current.add(parts, item)
    if current is not None:
        yield current


def auto_piece_length(sizes: Sequence[int]) -> int:
    """About 1,500 pieces per shard, but no larger than the median file (every file is
    padded to a piece boundary, so bigger pieces waste v1 space), within 16 KiB-16 MiB."""
    total = sum(sizes)
    piece = MIN_PIECE
    while piece < MAX_PIECE and total / piece > TARGET_PIECES:
        piece *= 2
    if sizes:
        median = statistics.median(sizes)
        while piece > MIN_PIECE and piece > median:
            piece //= 2
    return piece


def parse_piece_length(text: str | None, sizes: Sequence[int]) -> int:
    from musicark.units import parse_size

    if not text or text == "auto":
        return auto_piece_length(sizes)
    value = int(parse_size(text))
    if value < MIN_PIECE or value & (value - 1):
        raise BadQuery("--piece-size must be a power of two of at least 16KiB (or 'auto')")
    return value
