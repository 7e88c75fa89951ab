"""Last.fm and Libre.fm: scrobble CSV exports, and API-shaped JSON (recent tracks, loved
tracks), as the services and the common export tools write them.

CSV, as it really is: Libre.fm's export opens with comment lines written in UTF-7 (`+ACM-` is
`#`), then a header (`Artist,Track,Album,Time`; some have `userid`, some no album column);
older files have no header at all. Without a header, Libre.fm's column order is artist,
track, album, time and Last.fm export tools' (lastfm-to-csv) is artist, album, track, date
("31 Jan 2021 12:34", UTC). A loved track counts as one listen at the time it was loved.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from musicark.errors import BadSource
from musicark.listens.formats.common import batches, csv_fields, load_json
from musicark.listens.records import Batch, RowBuilder

HEADER_NAMES = {
    "artist": "artist", "artist_name": "artist", "track": "title", "title": "title",
    "song": "title", "track_name": "title", "name": "title", "album": "album",
    "release": "album", "album_name": "album", "time": "ts", "timestamp": "ts", "date": "ts",
    "uts": "ts", "listened_at": "ts", "userid": "user", "user": "user", "username": "user",
    "mbid": "mbid", "track_mbid": "mbid", "recording_mbid": "mbid",
}
NO_HEADER = {
    "librefm": ["artist", "title", "album", "ts"],
    "lastfm": ["artist", "album", "title", "ts"],
}
COMMENT_PREFIXES = ("#", "+ACM-")  # '#', and '#' in UTF-7
DATE_FORMATS = ("%d %b %Y %H:%M", "%d %b %Y, %H:%M", "%d %b %Y %H:%M %Z")


def reader(service: str):
    def read(path: Path, *, user: str = "") -> Iterator[Batch]:
        if path.suffix.lower() == ".json":
            yield from read_json(path, user=user)
        else:
            yield from read_csv(path, user=user, service=service)

    return read


def _ts(value: str) -> object:
    value = value.strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return value


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSource(f"{path}: cannot read as UTF-8 text: {exc}") from exc
    yield from enumerate(io.StringIO(text, newline=""), start=1)


def read_csv(path: Path, *, user: str = "", service: str = "librefm") -> Iterator[Batch]:
    rows = RowBuilder()
    header: list[str] | None = None

    def each() -> Iterator[None]:
        nonlocal header
        for number, line in _lines(path):
            if not line.strip() or line.lstrip().startswith(COMMENT_PREFIXES):
                continue
            fields = csv_fields(line)
            if fields is None:
                rows.reject(number, "not a CSV line (a field too long or badly quoted)")
                yield None
                continue
            if header is None:
                names = [HEADER_NAMES.get(f.strip().lower()) for f in fields]
                if "artist" in names and "title" in names and "ts" in names:
                    header = [n or "" for n in names]
                    continue
                header = NO_HEADER[service]
            if len(fields) != len(header):
                rows.reject(number, f"{len(fields)} fields where the header has {len(header)}")
                yield None
                continue
            rec = dict(zip(header, fields, strict=True))
            rows.add(number, ts=_ts(rec.get("ts", "")), artist=rec.get("artist"),
                     title=rec.get("title"), album=rec.get("album") or None,
                     mbid=rec.get("mbid"), user=rec.get("user") or user)
            yield None

    yield from batches(rows, each())


def read_json(path: Path, *, user: str = "") -> Iterator[Batch]:
    data = load_json(path)
    pages = data if isinstance(data, list) else [data]
    rows = RowBuilder()

    def each() -> Iterator[None]:
        number = 0
        for page in pages:
            if not isinstance(page, dict):
                raise BadSource(f"{path}: not a Last.fm/Libre.fm JSON export")
            kind = next((k for k in ("recenttracks", "lovedtracks") if k in page), None)
            if kind is None:
                raise BadSource(f"{path}: neither recenttracks nor lovedtracks")
            container = page[kind] or {}
            if not isinstance(container, dict):
                raise BadSource(f"{path}: {kind} is not an object")
            tracks = container.get("track") or []
            if isinstance(tracks, dict):  # the API's one-item case
                tracks = [tracks]
            if not isinstance(tracks, list):
                raise BadSource(f"{path}: {kind}.track is not a list")
            attr = container.get("@attr")
            owner = (attr.get("user") if isinstance(attr, dict) else None) or user
            for track in tracks:
                number += 1
                add_track(rows, number, track, user=owner)
                yield None

    yield from batches(rows, each())


def _text(value: Any) -> Any:
    """The API gives {'#text': ..., 'mbid': ...} or {'name': ...} or a plain string."""
    if isinstance(value, dict):
        return value.get("#text", value.get("name"))
    return value


def add_track(rows: RowBuilder, number: int, track: Any, *, user: str) -> None:
    if not isinstance(track, dict):
        rows.reject(number, "not a track object")
        return
    attr = track.get("@attr")
    if isinstance(attr, dict) and attr.get("nowplaying") == "true":
        rows.reject(number, "now playing, not a listen")
        return
    date = track.get("date")
    rows.add(number, ts=date.get("uts") if isinstance(date, dict) else date,
             artist=_text(track.get("artist")), title=track.get("name"),
             album=_text(track.get("album")), mbid=track.get("mbid"), user=user)
