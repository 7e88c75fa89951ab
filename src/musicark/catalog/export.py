"""Export the catalog: API-shaped records (lossless for api-json sources), flat JSONL, Parquet."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from musicark.archive import Archive
from musicark.catalog import apishape as shape
from musicark.catalog.diffing import patch
from musicark.catalog.importers.apijson import album_full_of, track_record_from_row
from musicark.errors import BadQuery, NotInCatalog

FORMATS = ("api-json", "jsonl", "parquet")

FLAT_SQL = """
SELECT t.rowid AS rowid, s.name AS source, t.ext_id AS id, t.mbid, t.name, t.isrc,
       t.disc_number, t.track_number, t.duration_ms, t.explicit, t.popularity, t.listens,
       (SELECT json_group_array(name) FROM (SELECT a.name FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid
         WHERE ta.track_rowid = t.rowid ORDER BY ta.position)) AS artists,
       (SELECT json_group_array(ext_id) FROM (SELECT a.ext_id FROM track_artists ta
          JOIN artists a ON a.rowid = ta.artist_rowid
         WHERE ta.track_rowid = t.rowid ORDER BY ta.position)) AS artist_ids,
       al.ext_id AS album_id, al.mbid AS album_mbid, al.name AS album, al.album_type,
       al.release_date, al.upc, al.label,
       m.codes AS markets, t.extra
  FROM tracks t
  JOIN sources s ON s.id = t.source_id
  LEFT JOIN albums al ON al.rowid = t.album_rowid
  LEFT JOIN markets m ON m.rowid = t.markets_rowid
 WHERE (:source IS NULL OR s.name = :source)
 ORDER BY t.rowid
"""
JSON_COLUMNS = ("artists", "artist_ids", "markets", "extra")

FLAT_SCHEMA = pa.schema([
    ("rowid", pa.int64()), ("source", pa.string()), ("id", pa.string()), ("mbid", pa.string()),
    ("name", pa.string()), ("isrc", pa.string()), ("disc_number", pa.int64()),
    ("track_number", pa.int64()), ("duration_ms", pa.int64()), ("explicit", pa.bool_()),
    ("popularity", pa.int64()), ("listens", pa.int64()),
    ("artists", pa.list_(pa.string())), ("artist_ids", pa.list_(pa.string())),
    ("album_id", pa.string()), ("album_mbid", pa.string()), ("album", pa.string()),
    ("album_type", pa.string()), ("release_date", pa.string()), ("upc", pa.string()),
    ("label", pa.string()), ("markets", pa.list_(pa.string())), ("extra", pa.string()),
])


def _source_id(archive: Archive, source: str | None) -> int | None:
    if source is None:
        return None
    row = archive.conn.execute("SELECT id FROM sources WHERE name = ?", (source,)).fetchone()
    if row is None:
        raise NotInCatalog(f"no source named {source!r}")
    return row[0]


def api_records(archive: Archive, source: str | None = None) -> Iterator[dict]:
    """Every own record (artists, albums, then tracks) in API shape, rebuilt exactly."""
    conn = archive.conn
    source_id = _source_id(archive, source)
    views = shape.Views(conn)
    where = "extra IS NOT NULL AND (:sid IS NULL OR source_id = :sid)"
    for (rowid,) in conn.execute(f"SELECT rowid FROM artists WHERE {where} ORDER BY rowid",
                                 {"sid": source_id}):
        row = views.artist_row(rowid)
        yield patch(views.artist_full(rowid, views.genres(rowid)), _loads(row["diff"]))
    for (rowid,) in conn.execute(f"SELECT rowid FROM albums WHERE {where} ORDER BY rowid",
                                 {"sid": source_id}):
        row = views.album_row(rowid)
        yield patch(album_full_of(views, row), _loads(row["diff"]))
    cur = conn.execute(
        "SELECT t.*, (SELECT json_group_array(artist_rowid) FROM (SELECT artist_rowid "
        "FROM track_artists WHERE track_rowid = t.rowid ORDER BY position)) AS _artists "
        "FROM tracks t WHERE (:sid IS NULL OR source_id = :sid) ORDER BY rowid",
        {"sid": source_id},
    )
    names = [d[0] for d in cur.description]
    for values in cur:
        row = dict(zip(names, values, strict=True))
        yield track_record_from_row(views, row, json.loads(row.pop("_artists")))


def flat_rows(archive: Archive, source: str | None = None) -> Iterator[dict]:
    """One denormalized row per track: columns, album, artist names and ids, markets, extra."""
    _source_id(archive, source)
    cur = archive.conn.execute(FLAT_SQL, {"source": source})
    names = [d[0] for d in cur.description]
    for values in cur:
        row = dict(zip(names, values, strict=True))
        for col in JSON_COLUMNS:
            if row[col] is not None:
                row[col] = json.loads(row[col])
        if row["explicit"] is not None:
            row["explicit"] = bool(row["explicit"])
        yield row


def export_catalog(
    archive: Archive, fmt: str, out: Path | None, *, source: str | None = None
) -> int:
    """Write the catalog to `out` (None: stdout, not for parquet); returns records written."""
    if fmt not in FORMATS:
        raise BadQuery(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise BadQuery("parquet export needs an output file")
        return _atomic(out, lambda tmp: _write_parquet(flat_rows(archive, source), tmp))
    rows = api_records(archive, source) if fmt == "api-json" else flat_rows(archive, source)
    if out is None:
        return _write_jsonl(rows, sys.stdout)

    def write(tmp: Path) -> int:
        with open(tmp, "w", encoding="utf-8") as fh:
            return _write_jsonl(rows, fh)

    return _atomic(out, write)


def canonical(record: Any) -> str:
    """Canonical JSON text: sorted keys, no insignificant whitespace, UTF-8."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return text


def _write_jsonl(rows: Iterator[dict], fh: IO[str]) -> int:
    n = 0
    for row in rows:
        fh.write(canonical(row))
        fh.write("\n")
        n += 1
    return n


def _write_parquet(rows: Iterator[dict], path: Path, batch: int = 50_000) -> int:
    n = 0
    with pq.ParquetWriter(path, FLAT_SCHEMA, compression="zstd") as writer:
        chunk: list[dict] = []
        for row in rows:
            if row["extra"] is not None:
                row["extra"] = canonical(row["extra"])
            chunk.append(row)
            if len(chunk) >= batch:
                writer.write_table(pa.Table.from_pylist(chunk, FLAT_SCHEMA))
                n += len(chunk)
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk, FLAT_SCHEMA))
            n += len(chunk)
    return n


def _atomic(out: Path, write) -> int:
    tmp = out.with_name(f".{out.name}.partial")
    try:
        n = write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
