"""Import JSONL of API-shaped objects: one track, album or artist per line (`type` says which).

Lossless: every line can be exported back equal as canonical JSON (see `apishape`).

Speed: a track's own fields always come back from its row (what a column cannot hold stays in
`extra`), so its view can differ from the record only where it embeds an album or artist row
written earlier. Those embedded views never change once written; each is kept as canonical
bytes (orjson, sorted keys) and compared in C with the record's object. When every embedding
matches, the track's diff is empty and no view is built; otherwise the general diff decides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from musicark.catalog import apishape as shape
from musicark.catalog.diffing import diff, patch, same
from musicark.catalog.importers.base import (
    Progress,
    no_progress,
    numbered_lines,
    parse_json_tagged,
    require_json,
)
from musicark.catalog.writer import CatalogWriter, dumps

KINDS = ("track", "album", "artist")
CANONICAL = orjson.OPT_SORT_KEYS
EMBED_CACHE = 200_000  # canonical embedded views kept per kind (cleared when full)
NOT_CACHED = b""  # never canonical JSON


class ApiJsonImporter:
    """Turns API-shaped records into catalog rows through a CatalogWriter."""

    verify_fast_path = False  # tests: also build the view and check the skipped diff is empty

    def __init__(self, writer: CatalogWriter) -> None:
        self.w = writer
        self.views = shape.Views(writer.conn, before_read=writer.flush)
        self._pending_updates: list[tuple[str, int, dict[str, Any]]] = []
        # rowid -> canonical bytes of the row's embedded view, or None where bytes cannot
        # stand for the value (NaN and infinities print as null, huge ints do not print).
        self._album_embeds: dict[int, bytes | None] = {}
        self._artist_embeds: dict[int, bytes | None] = {}
        self._exact = False  # the record was read by orjson, which then writes it exactly

    # -- entry -----------------------------------------------------------------------------
    def run(self, path: Path, progress: Progress = no_progress) -> None:
        report = self.w.report
        require_json(path, "api-json")
        adders = {"track": self.add_track, "album": self.add_album, "artist": self.add_artist}
        for number, raw in numbered_lines(path, progress):
            if not raw.strip():
                continue
            record, problem, self._exact = parse_json_tagged(raw)
            if problem:
                report.bad(number, problem)
                continue
            if type(record) is not dict:
                report.bad(number, f"a line must hold a JSON object, not {type(record).__name__}")
                continue
            kind = record.get("type")
            if kind not in KINDS:
                report.bad(number, f"`type` must be one of {', '.join(KINDS)}, got {kind!r}")
                continue
            if not shape.valid(record.get("id"), str):
                report.bad(number, f"a {kind} needs a string `id`")
                continue
            try:
                problem = adders[kind](record)
            except RecursionError:  # parsed at the limit, too deep to compare or store
                problem = "JSON nested too deeply to store"
            if problem:
                report.bad(number, problem)

    # -- own records -----------------------------------------------------------------------
    def add_track(self, record: dict) -> str | None:
        w = self.w
        work = dict(record)
        del work["type"]
        album = work.get("album")
        if type(album) is dict and shape.valid(album.get("id"), str):
            del work["album"]
        else:
            album = None
        artists = shape.pop_links(work, "artists")
        markets = shape.pop_str_list(work, "available_markets")
        cols = shape.take(work, shape.TRACK_SPECS)
        existing = w.tracks.get(cols["ext_id"])
        if existing is not None:
            return self._duplicate(record, self.track_record(existing))
        album_rowid = self.embed_album(album) if album is not None else None
        artist_rowids = [self.embed_artist(a) for a in artists or ()]
        cols["album_rowid"] = album_rowid
        cols["extra"] = self._text(work)
        cols["markets_rowid"] = w.market_rowid(markets) if markets is not None else None
        if not self._embeds_match(album, album_rowid, artists, artist_rowids):
            row = _blank_row(shape.TRACK_SPECS)
            row.update(cols)
            d = diff(record, track_view_of(self.views, row, artist_rowids))
            cols["diff"] = dumps(d) if d else None
        elif self.verify_fast_path:
            row = _blank_row(shape.TRACK_SPECS)
            row.update(cols)
            if diff(record, track_view_of(self.views, row, artist_rowids)) is not None:
                raise AssertionError(f"fast path skipped a diff: {record!r}")
        rowid = w.insert_track(**cols)
        if artist_rowids:
            w.link_track_artists(rowid, [(a, None) for a in artist_rowids])
        return None

    def add_album(self, record: dict) -> str | None:
        w = self.w
        work = dict(record)
        del work["type"]
        artists = shape.pop_links(work, "artists")
        markets = shape.pop_str_list(work, "available_markets")
        cols = shape.take(work, ALBUM_SPECS)
        rowid = w.albums.get(cols["ext_id"])
        if rowid is None:
            row = _blank_row(ALBUM_SPECS)
            row.update(cols, artist_rowids=[self.embed_artist(a) for a in artists or ()])
            row["markets_rowid"] = w.market_rowid(markets) if markets is not None else None
        else:
            row = self.views.album_row(rowid)
            if row["extra"] is not None:
                return self._duplicate(record, self.album_record(rowid))
            # Fill only the columns no embedding reads; embedded views stay as they were.
            for _, col, _ in shape.ALBUM_FULL_SPECS:
                if row[col] is None and col in cols:
                    row[col] = cols[col]
        row["extra"] = self._text(work)
        d = diff(record, album_full_of(self.views, row))
        row["diff"] = dumps(d) if d else None
        if rowid is None:
            rowid = w.insert_album(**_columns(row, ALBUM_ROW))
            w.link_album_artists(rowid, row["artist_rowids"])
            row["rowid"] = rowid
            self.views.remember(self.views.album_rows, rowid, row)
        else:
            self._set("albums", rowid, _columns(row, ALBUM_OWN))
        return None

    def add_artist(self, record: dict) -> str | None:
        w = self.w
        work = dict(record)
        del work["type"]
        genres = shape.pop_str_list(work, "genres") if work.get("genres") else None
        cols = shape.take(work, ARTIST_SPECS)
        rowid = w.artists.get(cols["ext_id"])
        if rowid is None:
            row = _blank_row(ARTIST_SPECS)
            row.update(cols)
        else:
            row = self.views.artist_row(rowid)
            if row["extra"] is not None:
                return self._duplicate(record, self.artist_record(rowid))
            for _, col, _ in shape.ARTIST_FULL_SPECS:
                if row[col] is None and col in cols:
                    row[col] = cols[col]
        row["extra"] = self._text(work)
        d = diff(record, shape.artist_view(row, genres, embedded=False))
        row["diff"] = dumps(d) if d else None
        if rowid is None:
            rowid = w.insert_artist(**_columns(row, ARTIST_ROW))
            row["rowid"] = rowid
            self.views.remember(self.views.artist_rows, rowid, row)
        else:
            self._set("artists", rowid, _columns(row, ARTIST_OWN))
        if genres:
            w.add_genres(rowid, genres)
        return None

    # -- embedded objects ------------------------------------------------------------------
    def embed_album(self, obj: dict) -> int:
        w = self.w
        rowid = w.albums.get(obj["id"])  # a valid string id (see `add_track`): its ext_id
        if rowid is not None and rowid in self._album_embeds:
            return rowid  # its embedded view is written already
        work = dict(obj)
        artists = shape.pop_links(work, "artists")
        markets = shape.pop_str_list(work, "available_markets")
        cols = shape.take(work, shape.ALBUM_EMBED_SPECS)
        if rowid is None:
            row = _blank_row(ALBUM_SPECS)
            row.update(cols, embed_extra=self._text(work),
                       artist_rowids=[self.embed_artist(a) for a in artists or ()])
            row["markets_rowid"] = w.market_rowid(markets) if markets is not None else None
            rowid = w.insert_album(**_columns(row, ALBUM_ROW))
            w.link_album_artists(rowid, row["artist_rowids"])
            row["rowid"] = rowid
            self.views.remember(self.views.album_rows, rowid, row)
        else:
            row = self.views.album_row(rowid)
            if row["embed_extra"] is None:
                row["embed_extra"] = self._text(work)
                self._set("albums", rowid, {"embed_extra": row["embed_extra"]})
        return rowid

    def embed_artist(self, obj: dict) -> int:
        w = self.w
        rowid = w.artists.get(obj["id"])  # a valid string id (`pop_links`): its ext_id
        if rowid is not None and rowid in self._artist_embeds:
            return rowid  # its embedded view is written already
        work = dict(obj)
        cols = shape.take(work, shape.ARTIST_EMBED_SPECS)
        if rowid is None:
            row = _blank_row(ARTIST_SPECS)
            row.update(cols, embed_extra=self._text(work))
            rowid = w.insert_artist(**_columns(row, ARTIST_ROW))
            row["rowid"] = rowid
            self.views.remember(self.views.artist_rows, rowid, row)
        else:
            row = self.views.artist_row(rowid)
            if row["embed_extra"] is None:
                row["embed_extra"] = self._text(work)
                self._set("artists", rowid, {"embed_extra": row["embed_extra"]})
        return rowid

    # -- fast path -------------------------------------------------------------------------
    def _embeds_match(self, album: dict | None, album_rowid: int | None,
                      artists: list[dict] | None, artist_rowids: list[int]) -> bool:
        """Whether every embedded object equals its row's embedded view, exactly."""
        if album is not None and not self._same_embed(
                album, album_rowid, self._album_embeds, self.views.album_embed):
            return False
        for obj, rowid in zip(artists or (), artist_rowids, strict=True):
            if not self._same_embed(obj, rowid, self._artist_embeds, self.views.artist_embed):
                return False
        return True

    @staticmethod
    def _same_embed(obj: dict, rowid: int, cache: dict, view_of) -> bool:
        want = cache.get(rowid, NOT_CACHED)
        if want is NOT_CACHED:
            want = _canonical(view_of(rowid))
            if len(cache) >= EMBED_CACHE:
                cache.clear()
            cache[rowid] = want
        # Bytes equal means values equal, with 1, 1.0 and true told apart; a NaN would
        # print as null, so bytes holding null never decide "equal" (the diff does).
        return want is not None and _canonical(obj) == want

    # -- helpers ---------------------------------------------------------------------------
    def _text(self, work: dict) -> str:
        """The JSON text of what stays in `extra`: orjson's (sorted) where it is exact."""
        if self._exact:
            try:
                return orjson.dumps(work, option=CANONICAL).decode()
            except orjson.JSONEncodeError:  # nested past orjson's 254 levels (it reads 1024)
                pass
        return dumps(work)

    def _set(self, table: str, rowid: int, cols: dict[str, Any]) -> None:
        self.w.set_later(table, rowid, cols)

    def _duplicate(self, record: dict, existing: dict) -> str | None:
        if same(record, existing):
            self.w.report.duplicates += 1
            return None
        return f"duplicate {record['type']} id {record['id']!r} with different content"

    def track_record(self, rowid: int) -> dict:
        return build_track_record(self.views, rowid)

    def album_record(self, rowid: int) -> dict:
        row = self.views.album_row(rowid)
        return patch(album_full_of(self.views, row), _loads(row["diff"]))

    def artist_record(self, rowid: int) -> dict:
        row = self.views.artist_row(rowid)
        return patch(self.views.artist_full(rowid, self.views.genres(rowid)), _loads(row["diff"]))


def build_track_record(views: shape.Views, rowid: int) -> dict:
    """Rebuild a track's source record exactly from its row, links and diff."""
    views.before_read()
    cur = views.conn.execute("SELECT * FROM tracks WHERE rowid = ?", (rowid,))
    names = [d[0] for d in cur.description]
    row = dict(zip(names, cur.fetchone(), strict=True))
    artist_rowids = [r[0] for r in views.conn.execute(
        "SELECT artist_rowid FROM track_artists WHERE track_rowid = ? ORDER BY position",
        (rowid,))]
    return track_record_from_row(views, row, artist_rowids)


def track_record_from_row(views: shape.Views, row: dict, artist_rowids: list[int]) -> dict:
    return patch(track_view_of(views, row, artist_rowids), _loads(row["diff"]))


def track_view_of(views: shape.Views, row: dict, artist_rowids: list[int]) -> dict:
    """The view a track row gives before its diff; import and export must share it."""
    album = views.album_embed(row["album_rowid"]) if row["album_rowid"] else None
    artists = [views.artist_embed(a) for a in artist_rowids]
    return shape.track_view(row, album, artists, views.markets(row["markets_rowid"]))


def album_full_of(views: shape.Views, row: dict) -> dict:
    artists = [views.artist_embed(a) for a in row["artist_rowids"]]
    return shape.album_view(row, artists, views.markets(row["markets_rowid"]), embedded=False)


ALBUM_SPECS = shape.ALBUM_EMBED_SPECS + shape.ALBUM_FULL_SPECS
ARTIST_SPECS = shape.ARTIST_EMBED_SPECS + shape.ARTIST_FULL_SPECS
ALBUM_OWN = [c for _, c, _ in shape.ALBUM_FULL_SPECS] + ["extra", "diff"]
ALBUM_ROW = [c for _, c, _ in ALBUM_SPECS] + ["markets_rowid", "extra", "embed_extra", "diff"]
ARTIST_OWN = [c for _, c, _ in shape.ARTIST_FULL_SPECS] + ["extra", "diff"]
ARTIST_ROW = [c for _, c, _ in ARTIST_SPECS] + ["extra", "embed_extra", "diff"]


def _columns(row: dict, names: list[str]) -> dict[str, Any]:
    return {n: row[n] for n in names}


def _blank_row(specs: list[shape.Spec]) -> dict[str, Any]:
    row: dict[str, Any] = {col: None for _, col, _ in specs}
    row.update(extra=None, embed_extra=None, diff=None, markets_rowid=None, artist_rowids=[])
    return row


def _canonical(value: Any) -> bytes | None:
    """Sorted-key JSON bytes that stand for `value` exactly, or None where they cannot."""
    try:
        out = orjson.dumps(value, option=CANONICAL)
    except (orjson.JSONEncodeError, RecursionError):
        return None
    return None if b"null" in out else out


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
