"""Helpers the format readers share: JSON loading with clear errors, ids inside URLs."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from musicark.errors import BadSource
from musicark.listens.records import BATCH_ROWS, Batch, RowBuilder

SPOTIFY_TRACK_RE = re.compile(r"(?:spotify:track:|open\.spotify\.com/track/)([A-Za-z0-9]{22})")


def spotify_track_id(value: object) -> str | None:
    """'spotify:track:ID' or 'https://open.spotify.com/track/ID' → 'ID'."""
    if isinstance(value, str):
        found = SPOTIFY_TRACK_RE.search(value)
        if found:
            return found.group(1)
    return None


UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")  # also the start of UTF-32 LE's BOM


def open_lines(path: Path) -> BinaryIO:
    """A line-per-record file opened for bytes, past a UTF-8 byte order mark. UTF-16 and
    UTF-32 are refused with one clear error: cut at b"\\n", every line but the first would
    be garbled and rejected."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise BadSource(f"{path}: cannot read: {exc}") from exc
    head = fh.read(3)
    if head.startswith(UTF16_32_BOMS) or head == b"\x00\x00\xfe":
        fh.close()
        raise BadSource(f"{path}: UTF-16 or UTF-32 text: convert it to UTF-8 first "
                        "(e.g. iconv -f UTF-16 -t UTF-8)")
    fh.seek(3 if head == b"\xef\xbb\xbf" else 0)
    return fh


def load_json(path: Path) -> Any:
    """A whole JSON document (NaN accepted so that it can be reported, not crash)."""
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadSource(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BadSource(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise BadSource(f"{path}: JSON nested too deeply to be a listen export") from exc


def csv_fields(line: str) -> list[str] | None:
    """One CSV line's fields, or None where the csv module refuses it (a field over its
    size limit, a stray quote in strict mode): the caller rejects that line alone."""
    try:
        return next(csv.reader([line]))
    except csv.Error:
        return None


def records(data: Any, path: Path, *keys: str) -> list:
    """The list of records at data[key0][key1]..., or a clear error naming what is missing."""
    at = data
    for key in keys:
        if not isinstance(at, dict) or key not in at:
            raise BadSource(f"{path}: not the expected export: no {'.'.join(keys)!r}")
        at = at[key]
    if not isinstance(at, list):
        raise BadSource(f"{path}: {'.'.join(keys)!r} is not a list")
    return at


def batches(rows: RowBuilder, items: Iterator[None]) -> Iterator[Batch]:
    """Drive a row-adding loop and yield a batch every BATCH_ROWS kept rows."""
    for _ in items:
        if len(rows) >= BATCH_ROWS or len(rows.rejects) >= BATCH_ROWS:
            yield rows.flush()
    if len(rows) or rows.rejects:
        yield rows.flush()
