"""Listen file formats: one module per format, each a `read(path, *, user) → Iterator[Batch]`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from musicark.errors import BadQuery
from musicark.listens.formats import (
    lastfm,
    listenbrainz,
    maloja,
    panoscrobbler,
    scrobbler_log,
    spinitron,
    spotify,
    table,
)
from musicark.listens.records import Batch

Reader = Callable[..., Iterator[Batch]]

FORMATS: dict[str, Reader] = {
    "listenbrainz": listenbrainz.read,
    "lastfm": lastfm.reader("lastfm"),
    "librefm": lastfm.reader("librefm"),
    "maloja": maloja.read,
    "panoscrobbler": panoscrobbler.read,
    "spotify-history": spotify.read,
    "spinitron": spinitron.read,
    "scrobbler-log": scrobbler_log.read,
}
TABLE = "table"
NAMES = [*FORMATS, TABLE]
SUFFIXES = {  # what a directory given for a format contributes
    "listenbrainz": (".jsonl", ".ndjson", ".json", ".parquet"),
    "lastfm": (".csv", ".json"), "librefm": (".csv", ".json"), "maloja": (".json",),
    "panoscrobbler": (".jsonl",), "spotify-history": (".json",), "spinitron": (".csv",),
    "scrobbler-log": (".log",), TABLE: (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet"),
}


def reader_for(name: str, columns: dict[str, str] | None = None) -> Reader:
    if name == TABLE:
        return table.reader(columns)
    if name not in FORMATS:
        raise BadQuery(f"unknown listens format {name!r}: use one of {', '.join(NAMES)}")
    return FORMATS[name]


def expand(paths: list[Path], fmt: str | None = None) -> list[Path]:
    """Files as given; a directory stands for the files in it (a dump, an export folder)
    that the format reads, by name suffix."""
    suffixes = SUFFIXES.get(fmt or "", tuple({s for v in SUFFIXES.values() for s in v}))
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            # Not only regular files: a FIFO or a device with a listens suffix is then
            # refused by name (import_listens), never skipped in silence.
            out.extend(sorted(p for p in path.rglob("*") if not p.is_dir() and
                              p.suffix.lower() in suffixes))
        else:
            out.append(path)
    return out
