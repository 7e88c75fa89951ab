"""The nested JSON shape of common music web APIs, mapped onto catalog rows and back.

A record's fields that have columns go to columns; the rest stay in `extra`; whatever the row's
*view* still does not reproduce exactly goes to a `diff` (see `diffing`). Albums and artists
are also embedded in tracks (and artists in albums): an embedding only ever reads the row's
"embed" columns and `embed_extra`, which are written once, so a diff stays valid even when the
album's or artist's own record arrives later and fills its remaining columns.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Spec = tuple[tuple[str, ...], str, type]

TRACK_SPECS: list[Spec] = [
    (("id",), "ext_id", str),
    (("name",), "name", str),
    (("disc_number",), "disc_number", int),
    (("track_number",), "track_number", int),
    (("duration_ms",), "duration_ms", int),
    (("explicit",), "explicit", bool),
    (("popularity",), "popularity", int),
    (("external_ids", "isrc"), "isrc", str),
]
ALBUM_EMBED_SPECS: list[Spec] = [
    (("id",), "ext_id", str),
    (("name",), "name", str),
    (("album_type",), "album_type", str),
    (("release_date",), "release_date", str),
    (("release_date_precision",), "release_date_precision", str),
    (("total_tracks",), "total_tracks", int),
]
ALBUM_FULL_SPECS: list[Spec] = [
    (("label",), "label", str),
    (("popularity",), "popularity", int),
    (("external_ids", "upc"), "upc", str),
]
ARTIST_EMBED_SPECS: list[Spec] = [
    (("id",), "ext_id", str),
    (("name",), "name", str),
]
ARTIST_FULL_SPECS: list[Spec] = [
    (("popularity",), "popularity", int),
    (("followers", "total"), "followers", int),
]

INT64 = 2**63


def valid(value: Any, kind: type) -> bool:
    """Only values a column gives back exactly may leave the record for a column."""
    if type(value) is not kind:
        return False
    if kind is str:
        return "\x00" not in value and (value.isascii() or _utf8(value))
    if kind is int:
        return -INT64 <= value < INT64
    return True


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def valid_str_list(value: Any) -> bool:
    if type(value) is not list:
        return False
    try:
        joined = "".join(value)  # a TypeError unless every item is a string
    except TypeError:
        return False
    # One check over the joined text: a NUL or a lone surrogate survives the join.
    return "\x00" not in joined and (joined.isascii() or _utf8(joined))


def take(work: dict, specs: Sequence[Spec]) -> dict[str, Any]:
    """Move every mappable field out of `work` (a shallow copy of the record) into columns."""
    cols: dict[str, Any] = {}
    for path, col, kind in specs:
        if len(path) == 1:
            key = path[0]
            value = work.get(key)  # a missing key gives None, never of a column's type
            if type(value) is not kind:
                continue
            # `valid`, inlined: this runs for every field of every record.
            if kind is str:
                if "\x00" in value or not (value.isascii() or _utf8(value)):
                    continue
            elif kind is int and not -INT64 <= value < INT64:
                continue
            cols[col] = value
            del work[key]
        else:
            outer, inner = path
            nested = work.get(outer)
            if type(nested) is dict and inner in nested and valid(nested[inner], kind):
                nested = dict(nested)
                cols[col] = nested.pop(inner)
                if nested:
                    work[outer] = nested
                else:
                    del work[outer]
    return cols


def put(view: dict, specs: Sequence[Spec], row: Mapping[str, Any]) -> None:
    """Write a row's columns back into a view at their record paths (inverse of `take`)."""
    for path, col, kind in specs:
        value = row[col]
        if value is None:
            continue
        if kind is bool:
            value = bool(value)
        if len(path) == 1:
            view[path[0]] = value
        else:
            outer, inner = path
            nested = view.get(outer)
            nested = dict(nested) if type(nested) is dict else {}
            nested[inner] = value
            view[outer] = nested


def pop_str_list(work: dict, key: str) -> list[str] | None:
    if key in work and valid_str_list(work[key]):
        return work.pop(key)
    return None


def pop_links(work: dict, key: str) -> list[dict] | None:
    """A non-empty list of embedded objects that all carry a string id becomes links."""
    items = work.get(key)
    if (
        type(items) is list
        and items
        and all(type(i) is dict and valid(i.get("id"), str) for i in items)
    ):
        return work.pop(key)
    return None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def track_view(
    row: Mapping[str, Any],
    album: dict | None,
    artists: list[dict],
    markets: list[str] | None,
) -> dict:
    view = dict(_loads(row["extra"]) or {})
    put(view, TRACK_SPECS, row)
    view["type"] = "track"
    if album is not None:
        view["album"] = album
    if artists:
        view["artists"] = artists
    if markets is not None:
        view["available_markets"] = markets
    return view


def album_view(
    row: Mapping[str, Any], artists: list[dict], markets: list[str] | None, *, embedded: bool
) -> dict:
    if embedded:
        view = dict(_loads(row["embed_extra"]) or {})
        put(view, ALBUM_EMBED_SPECS, row)
    else:
        view = dict(_loads(row["extra"]) or {})
        put(view, ALBUM_EMBED_SPECS, row)
        put(view, ALBUM_FULL_SPECS, row)
        view["type"] = "album"
    if artists:
        view["artists"] = artists
    if markets is not None:
        view["available_markets"] = markets
    return view


def artist_view(row: Mapping[str, Any], genres: list[str] | None, *, embedded: bool) -> dict:
    if embedded:
        view = dict(_loads(row["embed_extra"]) or {})
        put(view, ARTIST_EMBED_SPECS, row)
        return view
    view = dict(_loads(row["extra"]) or {})
    put(view, ARTIST_EMBED_SPECS, row)
    put(view, ARTIST_FULL_SPECS, row)
    if genres is not None:
        view["genres"] = genres
    view["type"] = "artist"
    return view


class Views:
    """Builds (and caches) the immutable embedded views of albums and artists by rowid.

    `before_read` lets an importer flush its buffered rows before a row is read back.
    """

    def __init__(self, conn, before_read: Callable[[], None] = lambda: None, size: int = 100_000):
        self.conn = conn
        self.before_read = before_read
        self.size = size
        self.album_rows: OrderedDict[int, dict] = OrderedDict()
        self.artist_rows: OrderedDict[int, dict] = OrderedDict()
        self._markets: dict[int, list[str]] = {}

    # rows ----------------------------------------------------------------------------------
    def remember(self, cache: OrderedDict, rowid: int, row: dict) -> None:
        cache[rowid] = row
        if len(cache) > self.size:
            cache.popitem(last=False)

    def _row(self, cache: OrderedDict, table: str, rowid: int) -> dict:
        row = cache.get(rowid)
        if row is None:
            self.before_read()
            cur = self.conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,))
            names = [d[0] for d in cur.description]
            row = dict(zip(names, cur.fetchone(), strict=True))
            row["rowid"] = rowid
            if table == "albums":
                row["artist_rowids"] = [r[0] for r in self.conn.execute(
                    "SELECT artist_rowid FROM album_artists WHERE album_rowid = ? "
                    "ORDER BY position", (rowid,))]
            self.remember(cache, rowid, row)
        else:
            cache.move_to_end(rowid)
        return row

    def album_row(self, rowid: int) -> dict:
        return self._row(self.album_rows, "albums", rowid)

    def artist_row(self, rowid: int) -> dict:
        return self._row(self.artist_rows, "artists", rowid)

    def markets(self, rowid: int | None) -> list[str] | None:
        if rowid is None:
            return None
        codes = self._markets.get(rowid)
        if codes is None:
            self.before_read()
            text = self.conn.execute(
                "SELECT codes FROM markets WHERE rowid = ?", (rowid,)
            ).fetchone()[0]
            codes = json.loads(text)
            if len(self._markets) < self.size:
                self._markets[rowid] = codes
        return list(codes)

    def genres(self, artist_rowid: int) -> list[str] | None:
        self.before_read()
        rows = self.conn.execute(
            "SELECT genre FROM artist_genres WHERE artist_rowid = ? ORDER BY position",
            (artist_rowid,),
        ).fetchall()
        return [r[0] for r in rows] or None

    # views ---------------------------------------------------------------------------------
    def artist_embed(self, rowid: int) -> dict:
        return artist_view(self.artist_row(rowid), None, embedded=True)

    def album_embed(self, rowid: int) -> dict:
        row = self.album_row(rowid)
        artists = [self.artist_embed(a) for a in row["artist_rowids"]]
        return album_view(row, artists, self.markets(row["markets_rowid"]), embedded=True)

    def artist_full(self, rowid: int, genres: list[str] | None) -> dict:
        return artist_view(self.artist_row(rowid), genres, embedded=False)
