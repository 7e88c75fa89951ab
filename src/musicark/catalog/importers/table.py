"""Import a table (CSV, TSV, JSONL or Parquet): one track per row, columns mapped to fields.

The mapping names, for each source column, the catalog field it fills; columns named like a
field map to it by default. Every other column is kept in the track's `extra` JSON.

Rows are processed in Arrow batches: values are converted and checked by Arrow's kernels,
albums and artists are resolved once per distinct key in a batch, and rows reach SQLite with
`executemany`. Rejected rows are reported with their line number and a reason.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from musicark.catalog.importers import columns
from musicark.catalog.importers.base import (
    Progress,
    no_progress,
    numbered_lines,
    open_binary,
    parse_json,
)
from musicark.catalog.importers.csvtext import (
    MAX_ROW,
    Utf8Checked,
    field_limit,
    oversized_row,
    row_too_long,
)
from musicark.catalog.writer import TRACK_COLUMNS, CatalogWriter, dumps
from musicark.errors import BadSource
from musicark.regular import open_input

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
ALBUM_COLUMNS = {"album": "name", "album_mbid": "mbid", "album_type": "album_type",
                 "release_date": "release_date",
                 "release_date_precision": "release_date_precision", "upc": "upc",
                 "label": "label", "total_tracks": "total_tracks",
                 "album_popularity": "popularity"}
ARTIST_KEYS = {"artist_ids": "ext_id", "artist_mbids": "mbid", "artists": "name"}
JSONL_BATCH = 20_000
CSV_BATCH_ROWS = 30_000


def table_format(path: Path, explicit: str | None) -> str:
    if explicit:
        if explicit not in ("csv", "tsv", "jsonl", "parquet"):
            raise BadSource(f"unknown table format {explicit!r}: use csv, tsv, jsonl or parquet")
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
    """Maps rows to tracks; albums and artists are found by id, else MBID, else by name."""

    def __init__(self, writer: CatalogWriter, mapping: dict) -> None:
        self.w = writer
        self.columns: dict[str, str] = dict(mapping.get("columns", {}))
        self.separator: str = mapping.get("list_separator", ";")
        self.format: str | None = mapping.get("format")
        unknown = sorted(set(self.columns.values()) - set(FIELDS))
        if unknown:
            raise BadSource(f"unknown target field(s) in mapping: {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(FIELDS))}")
        self.pending_csv: list[tuple[int, str]] = []  # (good-row index, reason) for CSV
        self.csv_invalid = 0
        self.good_rows = 0

    # -- entry -----------------------------------------------------------------------------
    def run(self, path: Path, progress: Progress = no_progress) -> None:
        fmt = table_format(path, self.format)
        self.w.defer_track_ids()
        reader = {"csv": self._delimited, "tsv": self._delimited, "jsonl": self._jsonl,
                  "parquet": self._parquet}[fmt]
        seen: dict[str, None] = {}
        for table, lines in reader(path, fmt, progress):
            header_map = self._resolve_columns(table.column_names)
            seen.update(dict.fromkeys(table.column_names))
            for index, reason in self.add_batch(table, header_map):
                if lines is None:
                    self.pending_csv.append((self.good_rows + index, reason))
                else:
                    self.w.report.bad(lines[index], reason)
            self.good_rows += table.num_rows
        if fmt == "jsonl" and seen:  # keys vary by line: checked over all of them
            self._check_columns(list(seen))
        mapped = self._resolve_columns(list(seen))
        self.w.report.unmapped_columns = [c for c in seen if c not in mapped]
        if self.pending_csv or self.csv_invalid:
            self._report_csv_lines(path, fmt)

    def _check_columns(self, names: list[str]) -> None:
        """Refuse a mapping that would import nameless tracks or name absent columns."""
        absent = [c for c in self.columns if c not in names]
        if absent:
            raise BadSource(f"mapped column(s) {', '.join(map(repr, absent))} not in the file "
                            f"(its columns: {', '.join(names)})")
        fields = set(self._resolve_columns(names).values())
        hint = ("; map them with --map COLUMN=FIELD (fields: name, artists, album, isrc, ... "
                "listed in docs/catalog.md)")
        if not fields:
            raise BadSource(f"no column maps to a catalog field (columns: {', '.join(names)})"
                            + hint)
        if "name" not in fields:
            raise BadSource("no column maps to the track name `name` (columns: "
                            f"{', '.join(names)})" + hint)

    # -- readers: each yields (Arrow table, line numbers or None) --------------------------
    def _delimited(self, path: Path, fmt: str, progress: Progress):
        delimiter = "\t" if fmt == "tsv" else ","
        with self._text(path) as first, field_limit():
            try:
                header = next(csv.reader(first, delimiter=delimiter), None)
            except csv.Error:  # over the field cap: a huge header or an unclosed quote
                raise row_too_long(path, 1) from None
        if not header:
            return
        if len(set(header)) != len(header):
            raise BadSource(f"{path}: repeated column names in the header")
        self._check_columns(header)

        def invalid(row: pacsv.InvalidRow) -> str:
            self.csv_invalid += 1
            return "skip"

        with open_binary(path, progress) as raw:
            try:
                # Small blocks keep Arrow's read-ahead small (RSS grows with block size);
                # they are regrouped into batches of about CSV_BATCH_ROWS rows. Arrow sees
                # only checked UTF-8 (csvtext), so its invalid-row callback never fails.
                reader = pacsv.open_csv(
                    io.BufferedReader(Utf8Checked(raw, path), MAX_ROW),
                    read_options=pacsv.ReadOptions(block_size=MAX_ROW),
                    parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                                     invalid_row_handler=invalid),
                    convert_options=pacsv.ConvertOptions(
                        column_types={h: pa.string() for h in header}, null_values=[""],
                        strings_can_be_null=True),
                )
                group: list[pa.RecordBatch] = []
                rows = 0
                for batch in reader:
                    group.append(batch)
                    rows += batch.num_rows
                    if rows >= CSV_BATCH_ROWS:
                        yield pa.Table.from_batches(group), None
                        group, rows = [], 0
                if group:
                    yield pa.Table.from_batches(group), None
            except pa.ArrowInvalid as exc:
                if "straddl" in str(exc):  # a row longer than a block, or an unclosed quote
                    with self._text(path) as text:
                        raise row_too_long(path, oversized_row(text, delimiter)) from None
                raise BadSource(f"{path}: cannot read as {fmt.upper()}: {one_line(exc)}") \
                    from exc

    @staticmethod
    def _text(path: Path) -> io.TextIOWrapper:
        """The file as text for Python's csv, its UTF-8 checked as Arrow's is."""
        raw = io.BufferedReader(Utf8Checked(open_binary(path), path), MAX_ROW)
        return io.TextIOWrapper(raw, encoding="utf-8", newline="")

    def _jsonl(self, path: Path, fmt: str, progress: Progress):
        rows: list[dict] = []
        lines: list[int] = []
        for number, raw in numbered_lines(path, progress):
            if not raw.strip():
                continue
            row, problem = parse_json(raw)
            if problem:
                self.w.report.bad(number, problem)
                continue
            if type(row) is not dict:
                self.w.report.bad(number, "a line must hold a JSON object")
                continue
            rows.append(row)
            lines.append(number)
            if len(rows) >= JSONL_BATCH:
                yield _table_from_rows(rows), lines
                rows, lines = [], []
        if rows:
            yield _table_from_rows(rows), lines

    def _parquet(self, path: Path, fmt: str, progress: Progress):
        fh, _ = open_input(path)  # a regular file, and the very one checked
        with fh:
            try:
                pf = pq.ParquetFile(fh)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise BadSource(f"{path}: not a readable Parquet file: {one_line(exc)}") \
                    from exc
            self._check_columns(pf.schema_arrow.names)
            total, done = pf.metadata.num_rows, 0
            batches = pf.iter_batches(batch_size=100_000)
            while True:
                try:  # a damaged page or column chunk shows only when it is read
                    batch = next(batches, None)
                except (pa.ArrowException, OSError) as exc:
                    raise BadSource(f"{path}: damaged Parquet data after row {done:,}: "
                                    f"{one_line(exc)}; nothing was imported") from exc
                if batch is None:
                    break
                _check_utf8(batch, path, done)
                yield (pa.Table.from_batches([batch]),
                       list(range(done + 1, done + batch.num_rows + 1)))
                done += batch.num_rows
                progress(done, total)

    def _report_csv_lines(self, path: Path, fmt: str) -> None:
        """Rare path: re-read the file to turn rejected rows into line numbers."""
        wanted = dict(self.pending_csv)
        good = 0
        width = None
        with self._text(path) as text, field_limit():
            reader = csv.reader(text, delimiter="\t" if fmt == "tsv" else ",")
            start = 1
            for values in _records(reader, path):
                # a record's line is where it starts (a quoted field may span lines)
                line, start = start, reader.line_num + 1
                if width is None:
                    width = len(values)
                    continue
                if not values:
                    continue
                if len(values) != width:
                    self.w.report.bad(line, f"has {len(values)} fields, the header "
                                      f"has {width}")
                    continue
                if good in wanted:
                    self.w.report.bad(line, wanted[good])
                good += 1
        self.w.report.bad_row_samples.sort(key=lambda b: b.line)

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

    # -- one batch -------------------------------------------------------------------------
    def add_batch(self, table: pa.Table, header_map: dict[str, str]) -> list[tuple[int, str]]:
        """Convert, check and write one batch; returns (row index, reason) of rejected rows."""
        n = table.num_rows
        rejected = np.zeros(n, bool)
        reasons: dict[int, str] = {}
        values: dict[str, Any] = {}
        raw: dict[str, pa.Array] = {}
        for column, field in header_map.items():
            arr = table.column(column).combine_chunks()
            kind = FIELDS[field]
            converted, bad = columns.convert(field, kind, arr, self.separator)
            fresh = np.flatnonzero(bad & ~rejected)
            if len(fresh):
                for i, value in zip(fresh, arr.take(pa.array(fresh)).to_pylist(), strict=True):
                    reasons[int(i)] = columns.reason(field, kind, value)
            rejected |= bad
            values[field] = converted
            raw[field] = arr
        for i, reason in _unnamed(values.get("name"), n):
            if not rejected[i]:
                rejected[i] = True
                reasons[i] = reason
        for i, reason in _unpaired_credits(values, n):
            if not rejected[i]:
                rejected[i] = True
                reasons[i] = reason
        if "track_id" in values:
            seen: set[str] = set()
            for i, track_id in enumerate(values["track_id"].to_pylist()):
                if track_id is None or rejected[i]:
                    continue
                if track_id in seen:
                    rejected[i] = True
                    reasons[i] = f"duplicate track_id {track_id!r}"
                seen.add(track_id)
        kept = np.flatnonzero(~rejected)
        if len(kept) < n:
            keep = ~rejected
            mask = pa.array(keep)
            for field, v in values.items():
                values[field] = v.take_rows(keep) if isinstance(v, columns.FlatList) else \
                    v.filter(mask)
            raw = {f: a.filter(mask) for f, a in raw.items()}
            table = table.filter(mask)
        if len(kept):
            for index, reason in self._write(table, header_map, values, raw):
                reasons[int(kept[index])] = reason
        return sorted(reasons.items())

    def _write(self, table: pa.Table, header_map: dict[str, str], values: dict[str, Any],
               raw: dict[str, pa.Array]) -> list[tuple[int, str]]:
        w = self.w
        n = table.num_rows
        artist_rowids, artist_flat = self._artists(values, n)
        album_rowids = self._albums(values, artist_rowids, artist_flat, n)
        markets = self._markets(values, raw, n)
        start = w.allocate("tracks", n)
        rowids = np.arange(start, start + n)
        unmapped = [c for c in table.column_names if c not in header_map]
        extra = ([dumps(r) for r in table.select(unmapped).to_pylist()] if unmapped
                 else itertools.repeat(None))
        isrc = values.get("isrc")
        cols = {
            "rowid": rowids.tolist(), "source_id": itertools.repeat(w.source_id),
            "ext_id": _list(values.get("track_id")), "mbid": _list(values.get("mbid")),
            "name": _list(values.get("name")), "album_rowid": album_rowids,
            "disc_number": _list(values.get("disc_number")),
            "track_number": _list(values.get("track_number")),
            "duration_ms": _list(values.get("duration_ms")),
            "explicit": _list(values.get("explicit")),
            "isrc": _list(pc.utf8_upper(isrc) if isrc is not None else None),
            "popularity": _list(values.get("popularity")),
            "listens": _list(values.get("listens")), "markets_rowid": markets,
            "extra": extra, "diff": itertools.repeat(None),
        }
        rows = zip(*(cols[c] for c in TRACK_COLUMNS), strict=False)
        rejected: list[tuple[int, str]] = []
        inserted = np.ones(n, bool)
        if w.track_ids is not None:  # fresh catalog: repeated ids are found before inserting
            if isinstance(cols["ext_id"], list):
                rejected = self._repeated_ids(cols["ext_id"], rowids, inserted)
            w.conn.executemany(
                f"INSERT INTO tracks({', '.join(TRACK_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(TRACK_COLUMNS))})",
                itertools.compress(rows, inserted.tolist()) if rejected else rows,
            )
        else:
            before = w.conn.total_changes
            w.conn.executemany(
                f"INSERT OR IGNORE INTO tracks({', '.join(TRACK_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(TRACK_COLUMNS))})", rows,
            )
            if w.conn.total_changes - before < n:
                rejected = self._duplicates(values["track_id"].to_pylist(), rowids, inserted)
        if artist_flat is not None and len(artist_flat.rows):
            ok = inserted[artist_flat.rows]
            w.conn.executemany(
                "INSERT INTO track_artists(track_rowid, position, artist_rowid) VALUES (?, ?, ?)",
                zip(rowids[artist_flat.rows[ok]].tolist(), artist_flat.positions[ok].tolist(),
                    artist_rowids[ok].tolist(), strict=False),
            )
        self._features(values, rowids, inserted)
        return rejected

    def _repeated_ids(self, ids: list[str | None], rowids: np.ndarray,
                      inserted: np.ndarray) -> list[tuple[int, str]]:
        """Rows whose track_id an earlier batch already brought (fresh imports, where the
        unique index is built at the end): hashes find candidates, their rows confirm."""
        seen = self.w.track_ids
        assert seen is not None
        present = np.array([i for i, x in enumerate(ids) if x is not None], np.int64)
        hashes = np.fromiter((hash(ids[i]) for i in present.tolist()), np.int64, len(present))
        candidates = seen.candidates(hashes)
        rejected = []
        if candidates:
            earlier: dict[int, str] = {}
            wanted = sorted({rowid for _, rowid in candidates})
            for chunk in range(0, len(wanted), 900):
                part = wanted[chunk:chunk + 900]
                earlier.update(self.w.conn.execute(
                    f"SELECT rowid, ext_id FROM tracks WHERE rowid IN "
                    f"({','.join('?' * len(part))})", part).fetchall())
            for pos, rowid in candidates:
                i = int(present[pos])
                if inserted[i] and earlier.get(rowid) == ids[i]:
                    inserted[i] = False
                    rejected.append((i, f"duplicate track_id {ids[i]!r}"))
        kept = inserted[present] if len(present) else np.zeros(0, bool)
        seen.add(hashes[kept], rowids[present[kept]])
        return sorted(rejected)

    def _duplicates(self, ids: list[str | None], rowids: np.ndarray,
                    inserted: np.ndarray) -> list[tuple[int, str]]:
        """Rows the unique (ext_id, source) index turned away: ids seen in an earlier batch."""
        found: dict[str, int] = {}
        wanted = [i for i in ids if i is not None]
        for chunk in range(0, len(wanted), 900):
            part = wanted[chunk:chunk + 900]
            found.update(self.w.conn.execute(
                f"SELECT ext_id, rowid FROM tracks WHERE source_id = ? AND ext_id IN "
                f"({','.join('?' * len(part))})", [self.w.source_id, *part]).fetchall())
        rejected = []
        for i, track_id in enumerate(ids):
            if track_id is not None and found.get(track_id) != rowids[i]:
                inserted[i] = False
                rejected.append((i, f"duplicate track_id {track_id!r}"))
        return rejected

    # -- artists, albums, markets, features ------------------------------------------------
    def _artists(self, values: dict[str, Any], n: int
                 ) -> tuple[np.ndarray, columns.FlatList | None]:
        """Artist rowid for every credit (row, position), resolved once per distinct key.

        Each row is keyed by the first of artist_ids, artist_mbids, artists that it fills, so
        a row with names but an empty ID column keeps all its names (rows whose names and IDs
        do not pair up were rejected in `_check_credits`).
        """
        fields = [f for f in ARTIST_KEYS if f in values]
        if not fields:
            return np.zeros(0, np.int64), None
        chosen = np.full(n, -1, np.int64)
        for k, f in enumerate(fields):
            filled = np.bincount(values[f].rows, minlength=n) > 0
            chosen[(chosen == -1) & filled] = k
        parts = []
        for k, f in enumerate(fields):
            flat: columns.FlatList = values[f]
            sel = chosen[flat.rows] == k
            parts.append((flat.values.filter(pa.array(sel)), flat.rows[sel], flat.positions[sel],
                          np.full(int(sel.sum()), k, np.int64)))
        rows = np.concatenate([p[1] for p in parts])
        if not len(rows):
            return np.zeros(0, np.int64), None
        positions = np.concatenate([p[2] for p in parts])
        kinds = np.concatenate([p[3] for p in parts])
        order = np.lexsort((positions, rows))
        keys = pa.concat_arrays([p[0] for p in parts]).take(pa.array(order))
        slots = columns.FlatList(keys, rows[order], positions[order])
        kinds = kinds[order]
        aligned = {f: _align(slots, values[f]) for f in fields}
        result = np.zeros(len(keys), np.int64)
        for k, by in enumerate(fields):
            members = np.flatnonzero(kinds == k)
            if not len(members):
                continue
            subset = keys.take(pa.array(members))
            uniq = pc.unique(subset)
            first = members[pc.index_in(uniq, value_set=subset).to_numpy()]
            resolver = self.w.artists if by == "artist_ids" else self.w.key_resolver(by)
            rowid_of, new = self._resolve_or_create(
                "artists", resolver, uniq,
                lambda new, first=first: {col: aligned[f].take(pa.array(first[new])).to_pylist()
                                          for f, col in ARTIST_KEYS.items() if f in aligned})
            if len(new) and "genres" in values:
                self._genres(values["genres"], slots, first[new], rowid_of[new])
            result[members] = rowid_of[pc.index_in(subset, value_set=uniq).to_numpy()]
        return result, slots

    def _resolve_or_create(self, table: str, resolver, uniq: pa.Array, columns_of
                           ) -> tuple[np.ndarray, np.ndarray]:
        """Rowids for distinct keys: known ones from the resolver, the rest inserted at once
        (`columns_of(new)` gives their columns). Returns (rowid per key, indices of new keys)."""
        keys = uniq.to_pylist()
        found = resolver.get_many(keys)
        new = np.array([i for i, r in enumerate(found) if r is None], np.int64)
        rowid_of = np.array([r or 0 for r in found], np.int64)
        if len(new):
            start = self.w.insert_many(table, len(new), columns_of(new), resolver,
                                       [keys[i] for i in new])
            rowid_of[new] = np.arange(start, start + len(new))
        return rowid_of, new

    def _genres(self, genres: columns.FlatList, primary: columns.FlatList,
                first: np.ndarray, rowids: np.ndarray) -> None:
        """A new artist first seen first-credited on a row takes that row's genres."""
        lead = primary.positions[first] == 0
        row_to_artist = dict(zip(primary.rows[first][lead].tolist(), rowids[lead].tolist(),
                                 strict=True))
        if not row_to_artist:
            return
        sel = np.isin(genres.rows, list(row_to_artist))
        by_artist: dict[int, list[str]] = {}
        for row, genre in zip(genres.rows[sel].tolist(),
                              genres.values.filter(pa.array(sel)).to_pylist(), strict=True):
            by_artist.setdefault(row_to_artist[row], []).append(genre)
        for rowid, names in by_artist.items():
            self.w.add_genres(rowid, names)

    def _albums(self, values: dict[str, Any], artist_rowids: np.ndarray,
                artist_flat: columns.FlatList | None, n: int) -> list[int | None]:
        first_artist = np.zeros(n, np.int64)
        if artist_flat is not None:
            at0 = artist_flat.positions == 0
            first_artist[artist_flat.rows[at0]] = artist_rowids[at0]
        names = values.get("album")
        ids = values.get("album_id")
        mbids = values.get("album_mbid")
        if ids is None and names is None and mbids is None:
            return [None] * n
        result = np.zeros(n, np.int64)
        has_id = _valid(ids, n)
        by_name = pc.binary_join_element_wise(
            names if names is not None else pa.nulls(n, pa.string()),
            pa.array(first_artist).cast(pa.string()), "\x1f")
        other_key = pc.coalesce(mbids if mbids is not None else pa.nulls(n, pa.string()),
                                by_name)
        for mask, keys, resolver in (
            (has_id, ids, self.w.albums),
            (~has_id & _valid(other_key, n), other_key, self.w.key_resolver("album")),
        ):
            rows = np.flatnonzero(mask)
            if not len(rows):
                continue
            subset = keys.take(pa.array(rows))
            uniq = pc.unique(subset)
            first = rows[pc.index_in(uniq, value_set=subset).to_numpy()]
            def album_columns(new: np.ndarray, first=first, resolver=resolver) -> dict:
                taken = pa.array(first[new])
                cols = {col: values[f].take(taken).to_pylist()
                        for f, col in ALBUM_COLUMNS.items() if f in values}
                if resolver is self.w.albums:
                    cols["ext_id"] = ids.take(taken).to_pylist()
                return cols

            rowid_of, new = self._resolve_or_create("albums", resolver, uniq, album_columns)
            if len(new):
                credited = first_artist[first[new]]
                has = credited > 0
                self.w.conn.executemany(
                    "INSERT INTO album_artists(album_rowid, position, artist_rowid) "
                    "VALUES (?, 0, ?)",
                    zip(rowid_of[new][has].tolist(), credited[has].tolist(), strict=True))
            result[rows] = rowid_of[pc.index_in(subset, value_set=uniq).to_numpy()]
        return [int(r) if r else None for r in result]

    def _markets(self, values: dict[str, Any], raw: dict[str, pa.Array], n: int) -> Any:
        if "markets" not in values:
            return itertools.repeat(None)
        arr = raw["markets"]
        if pa.types.is_list(arr.type) and not pa.types.is_string(arr.type.value_type):
            try:  # lists of nulls or numbers; rows holding nested lists were rejected
                arr = arr.cast(pa.list_(pa.string()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                arr = pa.array([None if v is None else [] for v in arr.to_pylist()],
                               pa.list_(pa.string()))
        key = pc.binary_join(arr, "\x1f") if pa.types.is_list(arr.type) else \
            columns._strings(arr)[0]
        uniq = pc.unique(key)
        flat: columns.FlatList = columns.convert("markets", list, uniq, self.separator)[0]
        codes: list[list[str]] = [[] for _ in range(len(uniq))]
        for row, code in zip(flat.rows, flat.values.to_pylist(), strict=True):
            codes[row].append(code)
        if pa.types.is_list(arr.type):
            codes = [k.split("\x1f") if k else [] for k in uniq.to_pylist()]
        rowid_of = np.array([self.w.market_rowid(c) if k is not None else 0
                             for c, k in zip(codes, uniq.to_pylist(), strict=True)], np.int64)
        per_row = rowid_of[pc.index_in(key, value_set=uniq).fill_null(0).to_numpy()]
        valid = _valid(key, n)
        return [int(r) if ok else None for r, ok in zip(per_row, valid, strict=True)]

    def _features(self, values: dict[str, Any], rowids: np.ndarray, inserted: np.ndarray
                  ) -> None:
        present = [f for f in FEATURE_FIELDS if f in values]
        if not present:
            return
        any_value = np.zeros(len(rowids), bool)
        for f in present:
            any_value |= _valid(values[f], len(rowids))
        rows = np.flatnonzero(any_value & inserted)
        if not len(rows):
            return
        taken = pa.array(rows)
        lists = [values[f].take(taken).to_pylist() for f in present]
        self.w.conn.executemany(
            f"INSERT INTO audio_features(track_rowid, {', '.join(present)}) "
            f"VALUES ({', '.join('?' * (len(present) + 1))})",
            zip(rowids[rows].tolist(), *lists, strict=False),
        )


def _check_utf8(batch: pa.RecordBatch, path: Path, done: int) -> None:
    """Parquet text is not checked as it is read (its spec says UTF-8; a stranger's file
    may hold any bytes), and Arrow's text kernels then fail: refuse it, naming the row."""
    try:
        batch.validate(full=True)
        return
    except pa.ArrowInvalid as exc:
        reason = one_line(exc)
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            for i, raw in enumerate(column.cast(pa.large_binary()).to_pylist()):
                try:
                    raw is None or raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadSource(f"{path}: row {done + i + 1:,}, column {name!r}: text "
                                    "that is not UTF-8; nothing was imported") from None
    raise BadSource(f"{path}: damaged Parquet data after row {done:,}: {reason}; nothing "
                    "was imported")


def one_line(exc: BaseException) -> str:
    """An Arrow error as one line (its messages may quote a row, or span lines)."""
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def _records(reader, path: Path) -> Iterator[list[str]]:
    """Python's csv records; a field past its cap (which Arrow has read: a file that
    changed since) is the one clear error Arrow gives for it."""
    start = 1
    try:
        for values in reader:
            yield values
            start = reader.line_num + 1
    except csv.Error:
        raise row_too_long(path, start) from None


def _unnamed(names: pa.Array | None, n: int) -> list[tuple[int, str]]:
    """Rows without a track name (a JSONL batch may lack the key altogether)."""
    if names is None:
        return [(i, "no track name") for i in range(n)]
    empty = ~_valid(names, n) | columns._mask(pc.equal(
        pc.utf8_length(pc.utf8_trim_whitespace(names)), 0))
    return [(int(i), "no track name") for i in np.flatnonzero(empty)]


def _unpaired_credits(values: dict[str, Any], n: int) -> list[tuple[int, str]]:
    """Rows whose artist names and IDs differ in number: pairing them up would guess.

    A list left empty is fine (names without IDs, or IDs without names)."""
    counts = {f: np.bincount(values[f].rows, minlength=n)
              for f in ("artists", "artist_ids", "artist_mbids") if f in values}
    words = {"artists": "names", "artist_ids": "artist_ids", "artist_mbids": "artist_mbids"}
    bad: dict[int, str] = {}
    fields = list(counts)
    for a, b in itertools.combinations(fields, 2):
        ca, cb = counts[a], counts[b]
        for i in np.flatnonzero((ca > 0) & (cb > 0) & (ca != cb)):
            bad.setdefault(int(i), f"artists: {ca[i]} {words[a]} but {cb[i]} {words[b]}; "
                           "names and IDs must pair up")
    return sorted(bad.items())


def _list(arr: pa.Array | None) -> Iterator[Any] | list[Any]:
    return itertools.repeat(None) if arr is None else arr.to_pylist()


def _valid(arr: pa.Array | None, n: int) -> np.ndarray:
    if arr is None:
        return np.zeros(n, bool)
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)


def _align(primary: columns.FlatList, other: columns.FlatList) -> pa.Array:
    """Values of `other` at the same (row, position) as each value of `primary`."""
    if other is primary:
        return primary.values
    key_p = pa.array(primary.rows * 100_000 + primary.positions)
    key_o = pa.array(other.rows * 100_000 + other.positions)
    return other.values.take(pc.index_in(key_p, value_set=key_o))


def _table_from_rows(rows: list[dict]) -> pa.Table:
    """JSON objects to a table; a column of mixed types falls back to text per value."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    arrays = []
    for name in names:
        column = [r.get(name) for r in rows]
        try:
            arrays.append(pa.array(column))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arrays.append(pa.array([v if v is None or isinstance(v, str) else
                                    json.dumps(v, ensure_ascii=False) for v in column],
                                   pa.string()))
    return pa.Table.from_arrays(arrays, names=names)
