"""What a release is asked for and what it reports: the types `build` (which makes a
release) and `records` (which writes it down) share, kept here so neither imports the other."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from musicark.release.metainfo import Torrent

GIB = 1 << 30


@dataclass
class ReleaseOptions:
    plan_id: int | None = None
    max_shard_bytes: int = 100 * GIB
    # libtorrent (and every client built on it) finds each file's directory by a linear
    # search over the directories seen so far, BEP 47 pad files included: loading a torrent
    # costs files x directories. 60,000 small files took 21-25 s to load and 22.7 MB, over
    # libtorrent's default 10 MB limit; 10,000 keeps every shard quick to open anywhere.
    max_files: int = 10_000
    piece_size: str | None = None  # None/"auto" or a size like "4MiB"
    web_seeds: tuple[str, ...] = ()
    buckets: str | None = None  # "50,20,0"; None: the reference's buckets
    on: date | None = None
    verify: bool = False
    all_matched: bool = False  # ignore plans: every matched track, as its original
    hybrid: bool = True  # False: v1-only torrents, for clients without BEP 52
    # Where hashing runs: local processes (None) or a Dask scheduler address / Client. Not
    # part of `as_dict`: it changes where the work runs, never a byte of the release.
    dask: str | object | None = None
    workers: int | None = None  # local processes for hashing (default: every core)

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan_id, "all_matched": self.all_matched,
                "max_shard_bytes": self.max_shard_bytes,
                "max_files": self.max_files, "piece_size": self.piece_size or "auto",
                "web_seeds": list(self.web_seeds), "buckets": self.buckets,
                "date": self.on.isoformat() if self.on else None,
                "torrent_format": "hybrid" if self.hybrid else "v1"}


@dataclass
class TorrentEntry:
    name: str
    bucket: str | None
    metadata: bool
    torrent: Torrent
    size: int
    num_files: int
    popularity_min: int | None
    popularity_max: int | None
    listens: float
    path: str  # of the .torrent, relative to the release directory


@dataclass
class ReleaseReport:
    name: str
    path: str
    torrents: list[dict]
    selection: dict
    linked: int = 0
    copied: int = 0
    bytes_hashed: int = 0
    resumed_shards: int = 0
    # Wall seconds per phase (bag writing runs beside hashing, so phases may overlap).
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add_time(phase, time.perf_counter() - began)

    def add_time(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["phases"] = {k: round(v, 3) for k, v in self.phases.items()}
        return data
