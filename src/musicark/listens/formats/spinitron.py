"""Spinitron: a radio playlist exported as CSV. A few `"Key","Value"` lines describe the
playlist (title, DJ, date), a blank line, then one spin a row under a header such as
`Date-time,Artist,Song,Release,Label` (times in ISO 8601 with the station's UTC offset)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from musicark.errors import BadSource
from musicark.listens.formats.common import batches, csv_fields
from musicark.listens.records import Batch, RowBuilder

HEADER_NAMES = {"date-time": "ts", "datetime": "ts", "start": "ts", "time": "ts",
                "timestamp": "ts", "artist": "artist", "song": "title", "title": "title",
                "release": "album", "album": "album", "isrc": "isrc", "duration": "duration"}


def read(path: Path, *, user: str = "") -> Iterator[Batch]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSource(f"{path}: cannot read as UTF-8 text: {exc}") from exc
    rows = RowBuilder()

    def each() -> Iterator[None]:
        header: list[str] | None = None
        for number, line in enumerate(io.StringIO(text, newline=""), start=1):
            if not line.strip():
                continue
            fields = csv_fields(line)
            if fields is None:
                rows.reject(number, "not a CSV line (a field too long or badly quoted)")
                yield None
                continue
            if header is None:
                names = [HEADER_NAMES.get(f.strip().lower(), "") for f in fields]
                if {"ts", "artist", "title"} <= set(names):
                    header = names
                continue  # playlist description lines before the header
            if len(fields) != len(header):
                rows.reject(number, f"{len(fields)} fields where the header has {len(header)}")
            else:
                rec = dict(zip(header, fields, strict=True))
                rows.add(number, ts=rec.get("ts"), artist=rec.get("artist"),
                         title=rec.get("title"), album=rec.get("album") or None,
                         isrc=rec.get("isrc"), user=user)
            yield None
        if header is None:
            raise BadSource(f"{path}: no spin header (Date-time, Artist, Song) found")

    yield from batches(rows, each())
