"""Pano Scrobbler: its JSONL export, one event a line (`timeMs`, `artist`, `track`, `album`,
`durationMs`, `event`); only `scrobble` events are listens (loves and the like are
reported, not counted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from musicark.listens.formats.common import batches, open_lines
from musicark.listens.records import Batch, RowBuilder


def read(path: Path, *, user: str = "") -> Iterator[Batch]:
    rows = RowBuilder()

    def each() -> Iterator[None]:
        with open_lines(path) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    rows.reject(number, "not JSON")
                    yield None
                    continue
                if not isinstance(rec, dict):
                    rows.reject(number, "not an object")
                elif rec.get("event", "scrobble") != "scrobble":
                    rows.reject(number, f"a {rec.get('event')!r} event, not a scrobble")
                else:
                    ms = rec.get("timeMs")
                    rows.add(number, ts=ms / 1000 if isinstance(ms, int | float) else ms,
                             artist=rec.get("artist"), title=rec.get("track"),
                             album=rec.get("album"), duration_ms=rec.get("durationMs"),
                             user=user)
                yield None

    yield from batches(rows, each())
