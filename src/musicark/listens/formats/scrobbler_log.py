"""`.scrobbler.log` (Audioscrobbler 1.1), written by Rockbox and other portable players:
`#` header lines (`#TZ/UTC` or `#TZ/UNKNOWN`, the player's local time, taken as given), then
tab-separated ARTIST, ALBUM, TITLE, TRACKNUM, LENGTH (s), RATING (L listened, S skipped),
TIMESTAMP, MUSICBRAINZ_TRACKID. Skipped tracks are reported, not counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from musicark.errors import BadSource
from musicark.listens.formats.common import batches
from musicark.listens.records import Batch, RowBuilder

FIELDS = 8


def read(path: Path, *, user: str = "") -> Iterator[Batch]:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSource(f"{path}: cannot read as UTF-8 text: {exc}") from exc
    if not text.startswith("#AUDIOSCROBBLER/"):
        raise BadSource(f"{path}: not a .scrobbler.log (no #AUDIOSCROBBLER header)")
    rows = RowBuilder()

    def each() -> Iterator[None]:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) == FIELDS - 1:  # the MusicBrainz id column is optional
                fields.append("")
            if len(fields) != FIELDS:
                rows.reject(number, f"{len(fields)} fields, not {FIELDS}")
            elif fields[5] == "S":
                rows.reject(number, "skipped (rating S), not a listen")
            else:
                artist, album, title, _, length, _, ts, mbid = fields
                rows.add(number, ts=ts, artist=artist, title=title, album=album or None,
                         duration_ms=int(length) * 1000 if length.isascii() and length.isdigit()
                         else None,
                         mbid=mbid, user=user)
            yield None

    yield from batches(rows, each())
