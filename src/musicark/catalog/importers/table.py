"""Import a table (CSV, TSV, JSONL or Parquet): one track per row, columns mapped to fields.

The mapping names, for each source column, the catalog field it fills; columns named like a
field map to it by default. Every other column is kept in the track's `extra` JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from musicark.catalog.importers.base import Progress, no_progress, numbered_lines, open_binary
from musicark.catalog.writer import CatalogWriter, dumps
from musicark.errors import BadSource

TRACK_FIELDS = {
    "track_id": str, "name": str, "mbid": str, "isrc": str, "disc_number": int,
    "track_number": int, "duration_ms": int, "explicit": bool, "popularity": int,
    "listens": int, "markets": list,
}
ALBUM_FIELDS = {
    "album_id": str, "album": str, "album_mbid": str, "album_type": str, "release_date": str,
    "release_date_precision": str, "upc": str, "label": str, "total_tracks": int,
    "album_popularity": int,
}
ARTIST_FIELDS = {"artists": list, "artist_ids": list, "artist_mbids": list, "genres": list}
FEATURE_FIELDS = {
    "tempo": float, "key": int, "mode": int, "loudness": float, "time_signature": int,
    "danceability": float, "energy": float, "valence": float, "acousticness": float,
    "instrumentalness": float, "liveness": float, "speechiness": float,
}
FIELDS: dict[str, type] = {**TRACK_FIELDS, **ALBUM_FIELDS, **ARTIST_FIELDS, **FEATURE_FIELDS}
TRUE = {"1", "true", "t", "yes", "y"}
FALSE = {"0", "false", "f", "no", "n"}


class BadValue(Exception):
    """A row value that cannot be used; the row is reported, the import goes on."""


def table_format(path: Path, explicit: str | None) -> str:
    if explicit:
        return explicit
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        name = name.removesuffix(suffix)
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".jsonl", "jsonl"),
                     (".ndjson", "jsonl"), (".json", "jsonl"), (".parquet", "parquet")):
        if name.endswith(ext):
            return fmt
    raise BadSource(f"cannot tell the table format of {path.name}; give format = csv, tsv, "
                    "jsonl or parquet in the mapping")


class TableImporter:
    """Maps rows to tracks; albums and artists are found by id, or else by name."""

    def __init__(self, writer: CatalogWriter, mapping: dict) -> None:
        self.w = writer
        self.columns: dict[str, str] = dict(mapping.get("columns", {}))
        self.separator: str = mapping.get("list_separator", ";")
        self.format: str | None = mapping.get("format")
        unknown = sorted(set(self.columns.values()) - set(FIELDS))
        if unknown:
            raise BadSource(f"unknown target field(s) in mapping: {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(FIELDS))}")
        self.album_keys = writer.key_resolver("album")
        self.artist_keys = writer.key_resolver("artist")

    def run(self, path: Path, progress: Progress = no_progress) -> None:
        fmt = table_format(path, self.format)
        rows = {"csv": self._delimited, "tsv": self._delimited, "jsonl": self._jsonl,
                "parquet": self._parquet}[fmt](path, fmt, progress)
        header_map: dict[str, str] | None = None
        for number, row in rows:
            if header_map is None or set(row) != set(header_map):
                header_map = self._resolve_columns(row.keys())
            try:
                self.add_row(row, header_map)
            except BadValue as exc:
                self.w.report.bad(number, str(exc))

    # -- readers ---------------------------------------------------------------------------
    def _delimited(self, path: Path, fmt: str, progress: Progress) -> Iterator[tuple[int, dict]]:
        with open_binary(path, progress) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
            reader = csv.reader(text, delimiter="\t" if fmt == "tsv" else ",")
            try:
                header = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise BadSource(f"{path}: unreadable header: {exc}") from exc
            width = len(header)
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    line = reader.line_num
                    raise BadSource(f"{path}: not UTF-8 near line {line}: {exc}") from exc
                except csv.Error as exc:
                    self.w.report.bad(reader.line_num, f"malformed row: {exc}")
                    continue
                if not values:
                    continue
                if len(values) != width:
                    self.w.report.bad(reader.line_num, f"has {len(values)} fields, the header has "
                                      f"{width}")
                    continue
                yield reader.line_num, {h: (v if v != "" else None)
                                        for h, v in zip(header, values, strict=True)}

    def _jsonl(self, path: Path, fmt: str, progress: Progress) -> Iterator[tuple[int, dict]]:
        for number, raw in numbered_lines(path, progress):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self.w.report.bad(number, f"not valid JSON: {exc}")
                continue
            if type(row) is not dict:
                self.w.report.bad(number, "a line must hold a JSON object")
                continue
            yield number, row

    def _parquet(self, path: Path, fmt: str, progress: Progress) -> Iterator[tuple[int, dict]]:
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise BadSource(f"{path}: not a readable Parquet file: {exc}") from exc
        total = pf.metadata.num_rows
        number = 0
        for batch in pf.iter_batches(batch_size=50_000):
            for row in batch.to_pylist():
                number += 1
                yield number, row
            progress(number, total)

    # -- mapping ---------------------------------------------------------------------------
    def _resolve_columns(self, names) -> dict[str, str]:
        """Source column → field: the explicit mapping first, then same-named columns."""
        result = {}
        for name in names:
            if name in self.columns:
                result[name] = self.columns[name]
            elif name in FIELDS and name not in self.columns.values():
                result[name] = name
        return result

    def convert(self, field: str, value: Any) -> Any:
        kind = FIELDS[field]
        if value is None:
            return None
        try:
            if kind is str:
                text = value if isinstance(value, str) else str(value)
                if "\x00" in text:
                    raise BadValue(f"{field}: contains a NUL character")
                return text
            if kind is int:
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError
                    return int(value)
                number = int(value)
                if field in ("popularity", "album_popularity") and not 0 <= number <= 100:
                    raise BadValue(f"{field}: {value!r} is outside 0-100")
                if not -(2**63) <= number < 2**63:
                    raise ValueError
                return number
            if kind is float:
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError
                return number
            if kind is bool:
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in TRUE:
                    return True
                if text in FALSE:
                    return False
                raise ValueError
            if kind is list:
                if isinstance(value, list):
                    return [str(v) for v in value if v is not None]
                return [part.strip() for part in str(value).split(self.separator) if part.strip()]
        except (TypeError, ValueError) as exc:
            name = {int: "an integer", float: "a number", bool: "a boolean"}.get(kind, "valid")
            raise BadValue(f"{field}: {value!r} is not {name}") from exc
        raise AssertionError(kind)

    # -- rows ------------------------------------------------------------------------------
    def add_row(self, row: dict[str, Any], columns: dict[str, str]) -> None:
        w = self.w
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, raw in row.items():
            field = columns.get(name)
            if field is None:
                extra[name] = raw
            else:
                values[field] = self.convert(field, raw)
        track_id = values.get("track_id")
        if track_id is not None and w.tracks.get(track_id) is not None:
            raise BadValue(f"duplicate track_id {track_id!r}")
        artist_rowids = self._artists(values)
        album_rowid = self._album(values, artist_rowids[:1])
        markets = values.get("markets")
        rowid = w.insert_track(
            ext_id=track_id, mbid=values.get("mbid"), name=values.get("name"),
            album_rowid=album_rowid, disc_number=values.get("disc_number"),
            track_number=values.get("track_number"), duration_ms=values.get("duration_ms"),
            explicit=values.get("explicit"), isrc=_upper(values.get("isrc")),
            popularity=values.get("popularity"), listens=values.get("listens"),
            markets_rowid=w.market_rowid(markets) if markets is not None else None,
            extra=dumps(extra) if extra else None,
        )
        w.link_track_artists(rowid, [(a, None) for a in artist_rowids])
        features = {f: values[f] for f in FEATURE_FIELDS if values.get(f) is not None}
        if features:
            w.add_audio_features(track_rowid=rowid, **features)

    def _artists(self, values: dict[str, Any]) -> list[int]:
        names = values.get("artists") or []
        ids = values.get("artist_ids") or []
        mbids = values.get("artist_mbids") or []
        rowids = []
        for i in range(max(len(names), len(ids), len(mbids))):
            name = names[i] if i < len(names) else None
            ext_id = ids[i] if i < len(ids) else None
            mbid = mbids[i] if i < len(mbids) else None
            if ext_id is not None:
                rowid = self.w.artists.get(ext_id)
            else:
                rowid = self.artist_keys.get(mbid or name)
            if rowid is None:
                rowid = self.w.insert_artist(ext_id=ext_id, mbid=mbid, name=name)
                if ext_id is None:
                    self.artist_keys.add(mbid or name, rowid)
                if i == 0 and values.get("genres"):
                    self.w.add_genres(rowid, values["genres"])
            rowids.append(rowid)
        return rowids

    def _album(self, values: dict[str, Any], first_artist: list[int]) -> int | None:
        ext_id = values.get("album_id")
        name = values.get("album")
        if ext_id is None and name is None and values.get("album_mbid") is None:
            return None
        if ext_id is not None:
            rowid = self.w.albums.get(ext_id)
            key = None
        else:
            key = values.get("album_mbid") or dumps([name, first_artist])
            rowid = self.album_keys.get(key)
        if rowid is None:
            rowid = self.w.insert_album(
                ext_id=ext_id, mbid=values.get("album_mbid"), name=name,
                album_type=values.get("album_type"), release_date=values.get("release_date"),
                release_date_precision=values.get("release_date_precision"),
                upc=values.get("upc"), label=values.get("label"),
                total_tracks=values.get("total_tracks"),
                popularity=values.get("album_popularity"),
            )
            if key is not None:
                self.album_keys.add(key, rowid)
            self.w.link_album_artists(rowid, first_artist)
        return rowid


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None
