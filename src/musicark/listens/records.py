"""One listen, whatever the format: the columns every reader yields, and the rules a listen
must meet to count (the same rules row by row and vectorized over Arrow columns).

A reader turns its format into `Batch`es: an Arrow table of COLUMNS and the rows it
rejected, each with its line (or record number) and a reason. Nothing is dropped silently.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCHEMA = pa.schema([
    ("line", pa.int64()),  # line (or record) number in the file, 1-based
    ("user", pa.string()),  # the source's user ('' when the file is one person's)
    ("ts", pa.int64()),  # Unix seconds, UTC
    ("artist", pa.string()),
    ("title", pa.string()),
    ("album", pa.string()),
    ("duration_ms", pa.int64()),
    ("mbid", pa.string()),  # MusicBrainz recording id
    ("isrc", pa.string()),
    ("ext_id", pa.string()),  # the source's own track id (e.g. a Spotify track id)
])
COLUMNS = SCHEMA.names

MIN_TS = 1009843200  # 2002-01-01T00:00:00Z: no scrobbling service existed before
FUTURE_SLACK = 86_400  # clocks drift; a day ahead of now is still believable
MAX_TEXT = 1024  # characters in an artist, title or album
MAX_TAGS = 50  # ListenBrainz's limits on a listen's free tags
MAX_TAG_LENGTH = 64
MAX_LISTEN_BYTES = 10_240  # ListenBrainz's limit on one submitted listen
BATCH_ROWS = 65_536
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


@dataclass
class Reject:
    line: int
    reason: str


@dataclass
class Batch:
    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    checked: bool = True  # False: a columnar reader's rows, checked by check_columns


def magnitude_reason(ts: float) -> str | None:
    """Why a numeric timestamp cannot be a Unix time in seconds, or None."""
    if ts >= 1e17:
        return "timestamp in nanoseconds"
    if ts >= 1e14:
        return "timestamp in microseconds"
    if ts >= 1e11:
        return "timestamp in milliseconds"
    if ts < MIN_TS:
        return "timestamp before 2002"
    if ts > time.time() + FUTURE_SLACK:
        return "timestamp in the future"
    return None


def parse_ts(value: object) -> tuple[int | None, str | None]:
    """(Unix seconds, None) or (None, reason) from a number, digits or an ISO 8601 string."""
    if value is None or value == "":
        return None, "no timestamp"
    if isinstance(value, bool):
        return None, "timestamp is not a number"
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            value = float(text)
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None, f"unreadable timestamp {text[:40]!r}"
            if parsed.tzinfo is None:
                return None, f"timestamp without a time zone {text[:40]!r}"
            value = parsed.timestamp()
    if not isinstance(value, int | float):
        return None, "timestamp is not a number"
    if isinstance(value, float) and not math.isfinite(value):
        return None, "timestamp is NaN or infinite"
    reason = magnitude_reason(value)
    return (None, reason) if reason else (int(value), None)


def text_reason(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{name} is not text"
    if "\x00" in value:
        return f"NUL character in {name}"
    if len(value) > MAX_TEXT:
        return f"{name} longer than {MAX_TEXT} characters"
    return None


def clean_mbid(value: object) -> str | None:
    """A recording MBID in canonical form, or None (a malformed one is ignored, not fatal)."""
    if isinstance(value, str):
        value = value.strip().lower()
        if UUID_RE.match(value):
            return value
    return None


def clean_isrc(value: object) -> str | None:
    if isinstance(value, str):
        value = value.replace("-", "").strip().upper()
        if ISRC_RE.match(value):
            return value
    return None


def tags_reason(tags: object) -> str | None:
    if tags is None:
        return None
    if not isinstance(tags, list):
        return "tags are not a list"
    if len(tags) > MAX_TAGS:
        return f"more than {MAX_TAGS} tags"
    for tag in tags:
        if not isinstance(tag, str):
            return "a tag is not text"
        if len(tag) > MAX_TAG_LENGTH:
            return f"tag longer than {MAX_TAG_LENGTH} characters"
    return None


class RowBuilder:
    """Collects listens row by row (for formats read record by record), checking each."""

    def __init__(self) -> None:
        self._cols: dict[str, list] = {c: [] for c in COLUMNS}
        self.rejects: list[Reject] = []

    def reject(self, line: int, reason: str) -> None:
        self.rejects.append(Reject(line, reason))

    def add(self, line: int, *, ts: object, artist: object, title: object, user: str = "",
            album: object = None, duration_ms: object = None, mbid: object = None,
            isrc: object = None, ext_id: object = None, tags: object = None) -> bool:
        """Check one listen; keep it, or record why not. True when kept."""
        seconds, reason = parse_ts(ts)
        for name, value in (("artist", artist), ("title", title), ("album", album),
                            ("user", user)):
            reason = reason or text_reason(name, value)
        if reason is None and not (isinstance(artist, str) and artist.strip()):
            reason = "no artist"
        if reason is None and not (isinstance(title, str) and title.strip()):
            reason = "no title"
        reason = reason or tags_reason(tags)
        if reason:
            self.reject(line, reason)
            return False
        cols = self._cols
        cols["line"].append(line)
        cols["user"].append(user or "")
        cols["ts"].append(seconds)
        cols["artist"].append(artist.strip())  # type: ignore[union-attr]
        cols["title"].append(title.strip())  # type: ignore[union-attr]
        cols["album"].append(album.strip() or None if isinstance(album, str) else None)
        cols["duration_ms"].append(_duration(duration_ms))
        cols["mbid"].append(clean_mbid(mbid))
        cols["isrc"].append(clean_isrc(isrc))
        cols["ext_id"].append(str(ext_id) if ext_id not in (None, "") else None)
        return True

    def __len__(self) -> int:
        return len(self._cols["line"])

    def flush(self) -> Batch:
        batch = Batch(pa.table(self._cols, schema=SCHEMA), self.rejects)
        self._cols = {c: [] for c in COLUMNS}
        self.rejects = []
        return batch


def _duration(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value <= 0 or value > 86_400_000:
        return None
    return int(value)


REASON_CODES = [
    "no timestamp", "timestamp in nanoseconds", "timestamp in microseconds",
    "timestamp in milliseconds", "timestamp before 2002", "timestamp in the future",
    *(f"NUL character in {n}" for n in ("artist", "title", "album", "user")),
    *(f"{n} longer than {MAX_TEXT} characters" for n in ("artist", "title", "album", "user")),
    "no artist", "no title",
]


def check_columns(ts: pa.ChunkedArray | pa.Array, coded: dict) -> np.ndarray:
    """Vectorized checks for columnar readers: per row 0 (a listen) or 1 + the index of the
    first failed rule in REASON_CODES. String rules run over distinct values only."""
    n = len(ts)
    code = np.zeros(n, np.int16)

    def mark(mask: np.ndarray, reason: str) -> None:
        code[(code == 0) & mask] = REASON_CODES.index(reason) + 1

    valid = np.asarray(pc.is_valid(ts).to_numpy(zero_copy_only=False), bool)
    mark(~valid, "no timestamp")
    values = pc.fill_null(ts, MIN_TS).to_numpy()
    mark(values >= 10**17, "timestamp in nanoseconds")
    mark(values >= 10**14, "timestamp in microseconds")
    mark(values >= 10**11, "timestamp in milliseconds")
    mark(values < MIN_TS, "timestamp before 2002")
    mark(values > time.time() + FUTURE_SLACK, "timestamp in the future")
    for name in ("artist", "title", "album", "user"):  # per field, as RowBuilder checks
        col = coded[name]
        mark(col.bad_values(lambda v: pc.match_substring(v, "\x00")),
             f"NUL character in {name}")
        mark(col.bad_values(lambda v: pc.greater(pc.utf8_length(v), MAX_TEXT)),
             f"{name} longer than {MAX_TEXT} characters")
    for name in ("artist", "title"):
        col = coded[name]
        empty = col.bad_values(lambda v: pc.equal(pc.utf8_trim_whitespace(v), ""))
        mark(empty | (col.index < 0), f"no {name}")
    return code


def checked(batch: Batch) -> Batch:
    """A columnar reader's batch with the rules applied (what the store does on import)."""
    if batch.checked:
        return batch
    from musicark.listens.identity import code

    coded = {c: code(batch.table[c]) for c in ("artist", "title", "album", "user")}
    reasons = check_columns(batch.table["ts"], coded)
    lines = batch.table["line"].to_numpy()
    rejects = batch.rejects + [Reject(int(lines[i]), REASON_CODES[reasons[i] - 1])
                               for i in np.flatnonzero(reasons)]
    return Batch(batch.table.filter(pa.array(reasons == 0)),
                 sorted(rejects, key=lambda r: r.line))
