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
import pyarrow.parquet as pq

from musicark.errors import BadSource
from musicark.listens.formats.common import batches, load_json, spotify_track_id
from musicark.listens.records import (
    MAX_LISTEN_BYTES,
    MIN_TS,
    SCHEMA,
    Batch,
    Reject,
    RowBuilder,
    check_table,
)

PARQUET_BATCH = 1 << 20
DUMP_COLUMNS = {"listened_at", "artist_name", "recording_name"}


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
    rows = RowBuilder()

    def each() -> Iterator[None]:
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise BadSource(f"{path}: cannot read: {exc}") from exc
        with fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    listen = orjson.loads(line)
                except orjson.JSONDecodeError:
                    listen = _lenient(line)
                    if listen is None:
                        rows.reject(number, "not JSON")
                        yield None
                        continue
                add_listen(rows, number, listen, user=user, size=len(line))
                yield None

    yield from batches(rows, each())


def _lenient(line: bytes) -> Any:
    """Python's parser accepts NaN and Infinity, so such a listen is reported for its
    timestamp rather than as unreadable."""
    import json

    try:
        return json.loads(line)
    except ValueError:
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
            add_listen(rows, number, listen, user=user, size=len(orjson.dumps(listen)))
            yield None

    yield from batches(rows, each())


def _playing_now(payload: Any, user: str) -> Batch:
    """What is playing now is no listen: each is reported (with its own fault, if any)."""
    rows = RowBuilder()
    for number, listen in enumerate(payload if isinstance(payload, list) else [], start=1):
        probe = RowBuilder()
        add_listen(probe, number, {"listened_at": MIN_TS, **listen}
                   if isinstance(listen, dict) else listen, user=user,
                   size=len(orjson.dumps(listen)))
        rows.rejects.extend(probe.rejects or
                            [Reject(number, "a playing-now notification, not a listen")])
    return rows.flush()


def read_parquet(path: Path, *, user: str = "") -> Iterator[Batch]:
    """The dumps, vectorized: no Python object per listen."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise BadSource(f"{path}: not a readable Parquet file: {exc}") from exc
    names = set(pf.schema_arrow.names)
    missing = DUMP_COLUMNS - names
    if missing:
        raise BadSource(f"{path}: not a ListenBrainz listen dump (no {', '.join(sorted(missing))})")
    wanted = [c for c in ("listened_at", "user_id", "user_name", "artist_name",
                          "recording_name", "release_name", "recording_mbid") if c in names]
    line = 1
    for record_batch in pf.iter_batches(batch_size=PARQUET_BATCH, columns=wanted):
        table = dump_table(pa.Table.from_batches([record_batch]), first_line=line, user=user)
        line += len(table)
        yield check_table(table)


def dump_table(src: pa.Table, *, first_line: int, user: str) -> pa.Table:
    """Dump columns → SCHEMA columns."""
    n = len(src)
    ts = src["listened_at"]
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(pc.cast(ts, pa.timestamp("s", ts.type.tz), safe=False), pa.int64())
    else:
        ts = pc.cast(ts, pa.int64(), safe=False)
    if "user_id" in src.column_names:
        users = pc.cast(src["user_id"], pa.string())
    elif "user_name" in src.column_names:
        users = src["user_name"]
    else:
        users = pa.array([user] * n, pa.string())
    nulls_str = pa.nulls(n, pa.string())
    mbid = src["recording_mbid"] if "recording_mbid" in src.column_names else nulls_str
    return pa.table({
        "line": pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
        "user": users, "ts": ts, "artist": src["artist_name"], "title": src["recording_name"],
        "album": src["release_name"] if "release_name" in src.column_names else nulls_str,
        "duration_ms": pa.nulls(n, pa.int64()),
        "mbid": pc.utf8_lower(mbid),
        "isrc": nulls_str, "ext_id": nulls_str,
    }, schema=SCHEMA)

