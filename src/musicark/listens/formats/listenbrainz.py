"""ListenBrainz: a user's listen export (JSONL, one listen a line, as `listens/YYYY/MM.jsonl`
in the export zip; or JSON: a list of listens, or an API submission `{"payload": [...]}`),
and the full and incremental listen dumps (Parquet, one row a listen, all users).

A listen is `{"listened_at", "track_metadata": {"artist_name", "track_name", "release_name",
"additional_info": {...}, "mbid_mapping": {...}}}`; the dumps flatten it to columns
(`listened_at`, `user_id`, `artist_name`, `recording_name`, `release_name`,
`recording_mbid`, ...). Limits follow ListenBrainz's own validation: at most 50 tags of at
most 64 characters, 10,240 bytes a listen; `playing_now` submissions are not listens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from musicark.errors import BadSource
from musicark.listens.formats.common import batches, load_json, open_lines, spotify_track_id
from musicark.listens.records import (
    MAX_LISTEN_BYTES,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MIN_TS,
    Batch,
    Reject,
    RowBuilder,
)

PARQUET_BATCH = 1 << 20
DUMP_COLUMNS = {"listened_at", "artist_name", "recording_name"}
DICTIONARY_COLUMNS = ["user_name", "artist_name", "recording_name", "release_name",
                      "recording_mbid"]


def read(path: Path, *, user: str = "") -> Iterator[Batch]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from read_parquet(path, user=user)
    elif suffix in (".jsonl", ".ndjson"):
        yield from read_jsonl(path, user=user)
    elif suffix == ".json":
        yield from read_json(path, user=user)
    else:
        raise BadSource(f"{path}: not a ListenBrainz file (.jsonl, .json or .parquet)")


def add_listen(rows: RowBuilder, number: int, listen: Any, *, user: str, size: int) -> None:
    """One listen (nested as exported and submitted, or flat as in the dumps)."""
    if not isinstance(listen, dict):
        rows.reject(number, "not a listen object")
        return
    if size > MAX_LISTEN_BYTES:
        rows.reject(number, f"listen larger than {MAX_LISTEN_BYTES:,} bytes")
        return
    owner = listen.get("user_name") or listen.get("user_id")
    owner = user if owner is None else str(owner)
    if "track_metadata" not in listen and "recording_name" in listen:
        rows.add(number, ts=listen.get("listened_at"), artist=listen.get("artist_name"),
                 title=listen.get("recording_name"), album=listen.get("release_name"),
                 mbid=listen.get("recording_mbid"), user=owner)
        return
    meta = listen.get("track_metadata")
    if not isinstance(meta, dict):
        rows.reject(number, "no track_metadata")
        return
    info = meta.get("additional_info") or {}
    mapping = meta.get("mbid_mapping") or {}
    if not isinstance(info, dict) or not isinstance(mapping, dict):
        rows.reject(number, "additional_info or mbid_mapping is not an object")
        return
    duration = info.get("duration_ms")
    if duration is None and isinstance(info.get("duration"), int | float):
        duration = info["duration"] * 1000
    rows.add(number, ts=listen.get("listened_at"), artist=meta.get("artist_name"),
             title=meta.get("track_name"), album=meta.get("release_name"),
             duration_ms=duration, user=owner,
             mbid=mapping.get("recording_mbid") or info.get("recording_mbid"),
             isrc=info.get("isrc"),
             ext_id=spotify_track_id(info.get("spotify_id") or info.get("origin_url")),
             tags=info.get("tags"))


def read_jsonl(path: Path, *, user: str = "") -> Iterator[Batch]:
    """In chunks of whole lines; each chunk columnar when it allows (pyarrow's JSON reader,
    no Python object per listen), else line by line (NaN, a timestamp as text, a flat or
    odd record, blank lines...), with the same rules either way."""
    with open_lines(path) as fh:
        first_line, rest = 1, b""
        while True:
            block = fh.read(JSONL_CHUNK_BYTES)
            data = rest + block
            if not data:
                return
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if cut == 0:
                # One line longer than a chunk, far past any listen's size (or a file that
                # is no JSONL: compressed, one huge array): rejected and skipped as it is
                # read, never held whole (memory stays one chunk however long it is).
                rows = RowBuilder()
                rows.reject(first_line, f"listen larger than {MAX_LISTEN_BYTES:,} bytes")
                yield rows.flush()
                rest = _past_line_end(fh)
                first_line += 1
                continue
            data, rest = data[:cut], data[cut:]
            fast = _jsonl_columnar(data, first_line, user)
            if fast is not None:
                yield fast
            else:
                yield from _jsonl_rows(data, first_line, user)
            first_line += data.count(b"\n") + (not data.endswith(b"\n"))


def _past_line_end(fh) -> bytes:
    """Read on to the end of the current line; the bytes after its newline."""
    while block := fh.read(JSONL_CHUNK_BYTES):
        end = block.find(b"\n")
        if end >= 0:
            return block[end + 1:]
    return b""


def _jsonl_rows(data: bytes, first_line: int, user: str) -> Iterator[Batch]:
    rows = RowBuilder()

    def each() -> Iterator[None]:
        for number, line in enumerate(data.splitlines(), start=first_line):
            if not line.strip():
                continue
            try:
                listen = orjson.loads(line)
            except orjson.JSONDecodeError:
                listen = _lenient(line)
                if listen is None:
                    rows.reject(number, "not JSON" if _utf8(line) else "not UTF-8 text")
                    yield None
                    continue
            add_listen(rows, number, listen, user=user, size=len(line))
            yield None

    yield from batches(rows, each())


JSONL_SCHEMA = pa.schema([
    ("listened_at", pa.int64()), ("user_name", pa.string()),
    ("track_metadata", pa.struct([
        ("artist_name", pa.string()), ("track_name", pa.string()),
        ("release_name", pa.string()),
        ("additional_info", pa.struct([
            ("recording_mbid", pa.string()), ("isrc", pa.string()),
            ("duration_ms", pa.float64()), ("duration", pa.float64()),
            ("spotify_id", pa.string()), ("origin_url", pa.string()),
            ("tags", pa.list_(pa.string()))])),
        ("mbid_mapping", pa.struct([("recording_mbid", pa.string())]))])),
])
JSONL_CHUNK_BYTES = 64 << 20
SPOTIFY_PATTERN = r"(?:spotify:track:|open\.spotify\.com/track/)(?P<id>[A-Za-z0-9]{22})"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ISRC_PATTERN = r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"


def _on_distinct(values: pa.Array | pa.ChunkedArray, transform, fill: str | None = None
                 ) -> pa.DictionaryArray:
    """`transform` applied once per distinct value (listens repeat their strings a lot); the
    result stays dictionary-encoded, as the store wants it. Nulls become `fill`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if fill is not None:
        values = pc.fill_null(values, fill)
    encoded = pc.dictionary_encode(values)
    return pa.DictionaryArray.from_arrays(encoded.indices,
                                          transform(encoded.dictionary).cast(pa.string()))


def _clean_mbids(values: pa.Array) -> pa.Array:
    values = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    return pc.if_else(pc.match_substring_regex(values, UUID_PATTERN), values, None)


def _clean_isrcs(values: pa.Array) -> pa.Array:
    values = pc.utf8_upper(pc.replace_substring(pc.utf8_trim_whitespace(values), "-", ""))
    return pc.if_else(pc.match_substring_regex(values, ISRC_PATTERN), values, None)


def _trimmed_or_null(values: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _present(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Empty strings as nulls, as the row path's `a or b` treats them."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _jsonl_columnar(data: bytes, first_line: int, user: str) -> Batch | None:
    """Whole lines as one columnar batch, or None where only the row path is exact."""
    lines_of = data.split(b"\n")  # faster than a numpy scan for newlines, here
    if lines_of and not lines_of[-1]:
        lines_of.pop()
    sizes = np.fromiter(map(len, lines_of), np.int64, len(lines_of))
    del lines_of
    if not len(sizes) or (sizes <= 1).any():  # blank lines: pyarrow would skip them
        return None
    try:
        table = pajson.read_json(pa.BufferReader(data), parse_options=pajson.ParseOptions(
            explicit_schema=JSONL_SCHEMA, unexpected_field_behavior="ignore"))
        table.validate(full=True)  # pyarrow's reader lets invalid UTF-8 through
    except pa.ArrowException:
        return None
    if len(table) != len(sizes):
        return None
    meta = table["track_metadata"].combine_chunks()
    if meta.null_count:  # the row path tells flat records from missing metadata
        return None
    info = pc.struct_field(meta, "additional_info")
    mapping = pc.struct_field(meta, "mbid_mapping")
    lines = np.arange(first_line, first_line + len(table), dtype=np.int64)
    rejects: list[Reject] = []
    bad = np.zeros(len(table), bool)

    def reject(mask: np.ndarray, reason: str) -> None:
        mask = mask & ~bad
        rejects.extend(Reject(int(n), reason) for n in lines[mask])
        bad[mask] = True

    reject(sizes > MAX_LISTEN_BYTES, f"listen larger than {MAX_LISTEN_BYTES:,} bytes")
    tags = pc.struct_field(info, "tags")
    count = pc.fill_null(pc.list_value_length(tags), 0).to_numpy(zero_copy_only=False)
    reject(count > MAX_TAGS, f"more than {MAX_TAGS} tags")
    flat = pc.list_flatten(tags)
    if len(flat):
        long_tag = pc.fill_null(pc.greater(pc.utf8_length(flat), MAX_TAG_LENGTH), False)
        parents = pc.list_parent_indices(tags).to_numpy()[
            np.asarray(long_tag.to_numpy(zero_copy_only=False), bool)]
        mask = np.zeros(len(table), bool)
        mask[parents] = True
        reject(mask, f"tag longer than {MAX_TAG_LENGTH} characters")
    mbid = _on_distinct(pc.coalesce(_present(pc.struct_field(mapping, "recording_mbid")),
                                    _present(pc.struct_field(info, "recording_mbid"))),
                        _clean_mbids)
    isrc = _on_distinct(pc.struct_field(info, "isrc"), _clean_isrcs)
    spotify = _on_distinct(pc.coalesce(_present(pc.struct_field(info, "spotify_id")),
                                       _present(pc.struct_field(info, "origin_url"))),
                           lambda v: pc.struct_field(pc.extract_regex(v, SPOTIFY_PATTERN), "id"))
    duration = pc.coalesce(pc.struct_field(info, "duration_ms"),
                           pc.multiply(pc.struct_field(info, "duration"), 1000.0))
    duration = pc.if_else(pc.and_(pc.greater(duration, 0), pc.less_equal(duration, 86_400_000)),
                          duration, None)
    out = pa.table({
        "line": lines, "user": _on_distinct(_present(table["user_name"]), lambda v: v, user),
        "ts": table["listened_at"],
        "artist": _on_distinct(meta.field("artist_name"), pc.utf8_trim_whitespace),
        "title": _on_distinct(meta.field("track_name"), pc.utf8_trim_whitespace),
        "album": _on_distinct(meta.field("release_name"), _trimmed_or_null),
        "duration_ms": pc.cast(pc.floor(duration), pa.int64()), "mbid": mbid, "isrc": isrc,
        "ext_id": spotify,
    })
    return Batch(out.filter(pa.array(~bad)), sorted(rejects, key=lambda r: r.line),
                 checked=False)


def _utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _lenient(line: bytes) -> Any:
    """Python's parser accepts NaN and Infinity, so such a listen is reported for its
    timestamp rather than as unreadable."""
    import json

    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def read_json(path: Path, *, user: str = "") -> Iterator[Batch]:
    data = load_json(path)
    if isinstance(data, dict) and "payload" in data:
        if data.get("listen_type") == "playing_now":
            yield _playing_now(data["payload"], user)
            return
        data = data["payload"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise BadSource(f"{path}: not a ListenBrainz listen list or submission")
    rows = RowBuilder()

    def each() -> Iterator[None]:
        for number, listen in enumerate(data, start=1):
            add_listen(rows, number, listen, user=user, size=_json_size(listen))
            yield None

    yield from batches(rows, each())


def _json_size(listen: Any) -> int:
    """A listen's size as JSON (its 10,240-byte limit); orjson refuses integers past 64
    bits, which Python's parser accepts (the listen is then rejected for its values)."""
    try:
        return len(orjson.dumps(listen))
    except TypeError:
        import json

        return len(json.dumps(listen))


def _playing_now(payload: Any, user: str) -> Batch:
    """What is playing now is no listen: each is reported (with its own fault, if any)."""
    rows = RowBuilder()
    for number, listen in enumerate(payload if isinstance(payload, list) else [], start=1):
        probe = RowBuilder()
        add_listen(probe, number, {"listened_at": MIN_TS, **listen}
                   if isinstance(listen, dict) else listen, user=user,
                   size=_json_size(listen))
        rows.rejects.extend(probe.rejects or
                            [Reject(number, "a playing-now notification, not a listen")])
    return rows.flush()


def read_parquet(path: Path, *, user: str = "") -> Iterator[Batch]:
    """The dumps, vectorized: strings stay dictionary-encoded as Parquet stores them, no
    Python object per listen; the store checks the rows (records.check_columns)."""
    try:
        schema = pq.read_schema(path)
        names = set(schema.names)
        for name in DICTIONARY_COLUMNS:
            if name in names and pa.types.is_nested(schema.field(name).type):
                raise BadSource(f"{path}: column {name} holds {schema.field(name).type}, "
                                "not text: not a ListenBrainz listen dump")
        pf = pq.ParquetFile(path, read_dictionary=[c for c in DICTIONARY_COLUMNS
                                                   if c in names])
    except (OSError, pa.ArrowException) as exc:
        raise BadSource(f"{path}: not a readable Parquet file: {exc}") from exc
    missing = DUMP_COLUMNS - names
    if missing:
        raise BadSource(f"{path}: not a ListenBrainz listen dump (no {', '.join(sorted(missing))})")
    wanted = [c for c in ("listened_at", "user_id", "user_name", "artist_name",
                          "recording_name", "release_name", "recording_mbid") if c in names]
    line = 1
    try:
        for record_batch in pf.iter_batches(batch_size=PARQUET_BATCH, columns=wanted):
            table = dump_table(pa.Table.from_batches([record_batch]), first_line=line,
                               user=user)
            line += len(table)
            yield Batch(table, checked=False)
    except pa.ArrowException as exc:
        raise BadSource(f"{path}: unreadable Parquet: {exc}") from exc


def _text_columns(src: pa.Table) -> pa.Table:
    """Text columns stored as something else (bytes, numbers) cast to strings; the cast
    checks UTF-8 and refuses lists, as ArrowInvalid (the file's clear error)."""
    for name in ("user_name", "artist_name", "recording_name", "release_name",
                 "recording_mbid"):
        if name in src.column_names:
            kind = src[name].type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                src = src.set_column(src.column_names.index(name), name,
                                     pc.cast(src[name], pa.string()))
    return src


def dump_table(src: pa.Table, *, first_line: int, user: str) -> pa.Table:
    """Dump columns → the listen columns (strings may stay dictionary-encoded)."""
    n = len(src)
    ts = src["listened_at"]
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(pc.cast(ts, pa.timestamp("s", ts.type.tz), safe=False), pa.int64())
    else:
        ts = pc.cast(ts, pa.int64(), safe=False)
    if "user_id" in src.column_names:
        users = pc.dictionary_encode(src["user_id"].combine_chunks())
        users = pa.DictionaryArray.from_arrays(users.indices,
                                               users.dictionary.cast(pa.string()))
    elif "user_name" in src.column_names:
        users = src["user_name"]
    else:
        users = pa.array([user] * n, pa.string())
    nulls_str = pa.nulls(n, pa.string())
    src = _text_columns(src)
    mbid = src["recording_mbid"] if "recording_mbid" in src.column_names else nulls_str
    return pa.table({
        "line": pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
        "user": users, "ts": ts, "artist": src["artist_name"], "title": src["recording_name"],
        "album": src["release_name"] if "release_name" in src.column_names else nulls_str,
        "duration_ms": pa.nulls(n, pa.int64()), "mbid": mbid,
        "isrc": nulls_str, "ext_id": nulls_str,
    })
