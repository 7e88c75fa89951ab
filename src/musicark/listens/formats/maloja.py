"""Maloja: the JSON export (`{"maloja": {...}, "scrobbles": [...]}`); each scrobble names its
track (artists, title, album, length in seconds) and how long it played (`duration`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from musicark.listens.formats.common import batches, load_json, records
from musicark.listens.records import Batch, RowBuilder


def read(path: Path, *, user: str = "") -> Iterator[Batch]:
    scrobbles = records(load_json(path), path, "scrobbles")
    rows = RowBuilder()

    def each() -> Iterator[None]:
        for number, scrobble in enumerate(scrobbles, start=1):
            track = scrobble.get("track") if isinstance(scrobble, dict) else None
            if not isinstance(track, dict):
                rows.reject(number, "no track")
                yield None
                continue
            artists = track.get("artists") or []
            album = track.get("album") if isinstance(track.get("album"), dict) else {}
            length = track.get("length")
            rows.add(number, ts=scrobble.get("time"),
                     artist=", ".join(a for a in artists if isinstance(a, str)) or None
                     if isinstance(artists, list) else None,
                     title=track.get("title"), album=album.get("albumtitle"),
                     duration_ms=length * 1000 if isinstance(length, int | float) else None,
                     user=user)
            yield None

    yield from batches(rows, each())
