"""Any table of listens: CSV, TSV, JSONL or Parquet, with a column mapping (as `catalog
import` takes one). Columns named like the fields need no mapping; timestamps are Unix
seconds or ISO 8601 with a time zone."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from musicark.errors import BadQuery, BadSource
from musicark.listens.formats.common import batches, open_lines
from musicark.listens.records import Batch, RowBuilder

FIELDS = ("ts", "artist", "title", "album", "duration_ms", "mbid", "isrc", "ext_id", "user")
REQUIRED = ("ts", "artist", "title")


def reader(columns: dict[str, str] | None = None):
    """A reader for tables whose column `c` fills field `columns[c]`."""
    columns = dict(columns or {})
    unknown = sorted(set(columns.values()) - set(FIELDS))
    if unknown:
        raise BadQuery(f"unknown listen field(s) {', '.join(unknown)}: use {', '.join(FIELDS)}")

    def read(path: Path, *, user: str = "") -> Iterator[Batch]:
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".txt"):
            records = _delimited(path, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".ndjson"):
            records = _jsonl(path)
        elif suffix == ".parquet":
            records = _parquet(path)
        else:
            raise BadSource(f"{path}: a table is .csv, .tsv, .jsonl or .parquet")
        rows = RowBuilder()

        def each() -> Iterator[None]:
            fieldmap: dict[str, str] | None = None
            for number, rec in records:
                if rec is None:
                    rows.reject(number, "not a JSON object")
                    yield None
                    continue
                if fieldmap is None:
                    fieldmap = {c: columns.get(c, c) for c in rec if columns.get(c, c) in FIELDS}
                    missing = set(REQUIRED) - set(fieldmap.values())
                    if missing:
                        raise BadSource(f"{path}: no column for {', '.join(sorted(missing))} "
                                        "(map one with --map COLUMN=FIELD)")
                values = {f: rec.get(c) for c, f in fieldmap.items()}
                values = {k: (None if v == "" else v) for k, v in values.items()}
                duration = values.get("duration_ms")
                if isinstance(duration, str):
                    duration = float(duration) if duration.isascii() and \
                        duration.replace(".", "", 1).isdigit() else None
                rows.add(number, ts=values.get("ts"), artist=values.get("artist"),
                         title=values.get("title"), album=values.get("album"),
                         duration_ms=duration, mbid=values.get("mbid"), isrc=values.get("isrc"),
                         ext_id=values.get("ext_id"),
                         user=str(values["user"]) if values.get("user") is not None else user)
                yield None

        yield from batches(rows, each())

    return read


def _delimited(path: Path, delimiter: str) -> Iterator[tuple[int, dict | None]]:
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise BadSource(f"{path}: cannot read: {exc}") from exc
    with fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            for rec in reader:
                yield reader.line_num, rec
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadSource(f"{path}: line {reader.line_num}: {exc}") from exc


def _jsonl(path: Path) -> Iterator[tuple[int, dict | None]]:
    with open_lines(path) as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    rec = None
                yield number, rec if isinstance(rec, dict) else None


def _parquet(path: Path) -> Iterator[tuple[int, dict | None]]:
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise BadSource(f"{path}: not a readable Parquet file: {exc}") from exc
    number = 0
    for batch in pf.iter_batches(batch_size=65_536):
        for rec in batch.to_pylist():
            number += 1
            for column, value in rec.items():
                if isinstance(value, datetime):  # Parquet timestamps without a zone are UTC
                    rec[column] = (value if value.tzinfo else value.replace(tzinfo=UTC)
                                   ).timestamp()
            yield number, rec
