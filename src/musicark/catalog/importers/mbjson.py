"""Import MusicBrainz JSON: data-dump lines (one WS/2 document per line) and web-service
responses (one document per file, or a directory of them).

Releases (with media → tracks → recordings), release groups (with their releases),
recordings, tracks, media, artists, search/browse lists of those, and AcoustID lookup results
are understood. Each fact with a column goes there; the rest of each document stays in `extra`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from musicark.catalog.importers.base import (
    Progress,
    no_progress,
    numbered_lines,
    parse_json_tagged,
    require_json,
    unstorable,
)
from musicark.catalog.writer import CatalogWriter, dumps
from musicark.errors import BadSource
from musicark.regular import open_input

LIST_KEYS = {"releases": "release", "recordings": "recording", "artists": "artist",
             "release-groups": "release-group", "media": "medium", "tracks": "track",
             "results": "acoustid"}


def date_precision(date: Any) -> tuple[str | None, str | None]:
    if not date or type(date) is not str:  # AcoustID writes {"year": ...}: kept in extra
        return None, None
    return date, {4: "year", 7: "month", 10: "day"}.get(len(date))


def document_kind(doc: dict) -> str | None:
    """Tell what a WS/2 document describes from the keys it carries."""
    if "title" in doc and ("media" in doc or "release-events" in doc or "barcode" in doc
                           or "text-representation" in doc):
        return "release"
    if "primary-type" in doc or ("releases" in doc and "first-release-date" in doc
                                 and "length" not in doc):
        return "release-group"
    if "recording" in doc and ("position" in doc or "number" in doc):
        return "track"
    if "tracks" in doc and "track-count" in doc:
        return "medium"
    if "releasegroups" in doc or ("duration" in doc and "artists" in doc):
        return "acoustid"
    if "title" in doc and ("length" in doc or "isrcs" in doc or "video" in doc):
        return "recording"
    if "sort-name" in doc and "name" in doc and "title" not in doc:
        return "artist"
    for key, kind in LIST_KEYS.items():
        if isinstance(doc.get(key), list):
            return "list:" + kind
    return None


def read_document(raw: bytes) -> tuple[Any, str | None]:
    """`parse_json`, and numbers checked too: ids, lengths and positions go to integer
    columns, where a 400-digit integer or a NaN would fail the whole import."""
    doc, problem, exact = parse_json_tagged(raw)
    if doc is not None and not exact and not problem:
        problem = unstorable(doc, numbers=True)
    return doc, problem


# The type of every field that reaches a column or that the importer walks into (null is
# always allowed). MusicBrainz and AcoustID write them so; a document that does not is a
# bad row, before any of it is written.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("id", "title", "name", "sort-name", "barcode", "joinphrase",
                     "primary-type"), (str,)),
    **dict.fromkeys(("position", "track-count", "length"), (int,)),
    "duration": (int, float),
    **dict.fromkeys(("label", "area", "recording", "release-group", "artist"), (dict,)),
    **dict.fromkeys(("media", "tracks", "label-info", "release-events", "artist-credit",
                     "isrcs", "releases", "genres", "artists", "iso-3166-1-codes",
                     "recordings", "release-groups", "results"), (list,)),
}
FIELD_KEYS = frozenset(FIELD_TYPES)
TYPE_WORDS = {str: "text", int: "an integer", dict: "an object", list: "a list"}


def wrong_type(doc: dict) -> str | None:
    """Why a document cannot be imported as it stands (a field of the wrong type, a
    duration no column holds), or None. Only the fields above are looked at, and only the
    objects the importer reads (not relations, aliases, tags...): 40 % of the cost of
    orjson parsing the document, a tenth of the import's CPU time."""
    stack: list = [doc]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(x for x in item if type(x) is dict or type(x) is list)
            continue
        for key in FIELD_KEYS.intersection(item):
            value = item[key]
            if value is None:
                continue
            want = FIELD_TYPES[key]
            if type(value) not in want:
                return (f"`{key}` is {type(value).__name__} where "
                        f"{' or '.join(TYPE_WORDS.get(t, t.__name__) for t in want)} belongs")
            if key == "duration" and not abs(value) < 9e15:
                return f"`duration` {value} is no length in seconds"
            if want[0] is dict or want[0] is list:
                stack.append(value)
    return None


def _without(doc: dict, *keys: str) -> dict:
    return {k: v for k, v in doc.items() if k not in keys}


class MbJsonImporter:
    def __init__(self, writer: CatalogWriter) -> None:
        self.w = writer
        self.file = ""

    def bad(self, number: int, reason: str) -> None:
        self.w.report.bad(number, f"{self.file}: {reason}" if self.file else reason)

    def _documents(self, src: Path, progress: Progress) -> Iterator[tuple[int, Any]]:
        # Every file with a JSON suffix is read (a FIFO or device among them is refused
        # by open_binary, never skipped in silence); folders are walked.
        files = sorted(p for p in src.rglob("*") if not p.is_dir() and p.suffix.lower() in (
            ".json", ".jsonl", ".ndjson")) if src.is_dir() else [src]
        if not files:
            raise BadSource(f"{src}: no .json or .jsonl files")
        for path in files:
            require_json(path, "musicbrainz-json")
        for path in files:
            self.file = path.name
            text_whole = None
            fh, size = open_input(path)
            with fh:
                whole = fh.read() if path.suffix.lower() == ".json" and size < 256 << 20 \
                    else None
            if whole is not None:
                # Not one document: maybe JSON lines after all.
                text_whole, problem = read_document(whole)
                if text_whole is not None and problem:
                    self.bad(1, problem)  # one document, read but not storable
                    continue
            if text_whole is not None:
                yield 1, text_whole
                continue
            for number, raw in numbered_lines(path, progress):
                if not raw.strip():
                    continue
                doc, problem = read_document(raw)
                if problem:
                    self.bad(number, problem)
                else:
                    yield number, doc

    def run(self, src: Path, progress: Progress = no_progress) -> None:
        for number, doc in self._documents(src, progress):
            problem = wrong_type(doc) if type(doc) is dict else None
            if problem:
                self.bad(number, problem + "; document not imported")
                continue
            try:
                self.add(number, doc)
            except RecursionError:  # parsed at the limit, too deep to store
                self.bad(number, "JSON nested too deeply to store")

    def add(self, number: int, doc: Any, hint: str | None = None) -> None:
        if not isinstance(doc, dict):
            self.bad(number, "a document must be a JSON object")
            return
        kind = hint or document_kind(doc)
        if kind is None:
            self.bad(number, "not a MusicBrainz release, release group, recording, "
                     f"track, medium or artist document (keys: {', '.join(list(doc)[:6])})")
            return
        if kind.startswith("list:"):
            key = next(k for k, v in LIST_KEYS.items() if v == kind[5:])
            for item in doc[key]:
                self.add(number, item, kind[5:])
            return
        if not isinstance(doc.get("id"), str) and kind not in ("medium",):
            self.bad(number, f"a {kind} document needs a string id")
            return
        getattr(self, "_" + kind.replace("-", "_"))(doc)

    # -- entities --------------------------------------------------------------------------
    def artist_rowid(self, artist: dict) -> int | None:
        if not isinstance(artist, dict) or not isinstance(artist.get("id"), str):
            return None
        rowid = self.w.artists.get(artist["id"])
        if rowid is None:
            rowid = self.w.insert_artist(
                ext_id=artist["id"], mbid=artist["id"], name=artist.get("name"),
                sort_name=artist.get("sort-name"),
                extra=dumps(_without(artist, "id", "name", "sort-name")),
            )
        return rowid

    def credits(self, credit: Any) -> list[tuple[int, str | None]]:
        result = []
        for entry in credit if isinstance(credit, list) else []:
            if isinstance(entry, dict):
                rowid = self.artist_rowid(entry.get("artist"))
                if rowid is not None:
                    result.append((rowid, entry.get("joinphrase") or None))
        return result

    def _artist(self, doc: dict) -> None:
        if self.w.artists.get(doc["id"]) is not None:
            self.w.report.duplicates += 1
            return
        rowid = self.artist_rowid(doc)
        genres = [g["name"] for g in doc.get("genres") or [] if isinstance(g, dict)
                  and isinstance(g.get("name"), str)]
        if genres and rowid is not None:
            self.w.add_genres(rowid, genres)

    def _release_group(self, doc: dict) -> None:
        group = _without(doc, "releases")
        for release in doc.get("releases") or []:
            if isinstance(release, dict) and isinstance(release.get("id"), str):
                self._release({**release, "release-group": release.get("release-group", group)})

    def _release(self, doc: dict) -> None:
        w = self.w
        if w.albums.get(doc["id"]) is not None:
            w.report.duplicates += 1
            return
        group = doc.get("release-group") if isinstance(doc.get("release-group"), dict) else {}
        date, precision = date_precision(doc.get("date") or None)
        labels = [li.get("label") or {} for li in doc.get("label-info") or []
                  if isinstance(li, dict)]
        countries = sorted({code for ev in doc.get("release-events") or [] if isinstance(ev, dict)
                            for code in ((ev.get("area") or {}).get("iso-3166-1-codes") or [])
                            if type(code) is str})
        media = [m for m in doc.get("media") or [] if isinstance(m, dict)]
        counts = [m.get("track-count") for m in media if isinstance(m.get("track-count"), int)]
        primary = group.get("primary-type")
        rowid = w.insert_album(
            ext_id=doc["id"], mbid=doc["id"], name=doc.get("title"),
            album_type=primary.lower() if isinstance(primary, str) else None,
            release_date=date, release_date_precision=precision,
            upc=doc.get("barcode") or None,
            label=labels[0].get("name") if labels else None,
            total_tracks=sum(counts) if counts else None,
            markets_rowid=w.market_rowid(countries) if countries else None,
            extra=dumps(_without(doc, "id", "title", "media", "barcode")),
        )
        w.link_album_artists(rowid, [a for a, _ in self.credits(doc.get("artist-credit"))])
        for medium in media:
            self._medium(medium, rowid, doc.get("artist-credit"))

    def _medium(self, medium: dict, album_rowid: int | None = None, credit: Any = None) -> None:
        info = {k: medium.get(k) for k in ("format", "title") if medium.get(k)}
        for track in medium.get("tracks") or []:
            if isinstance(track, dict) and isinstance(track.get("id"), str):
                self._track(track, album_rowid, medium.get("position"), info, credit)

    def _track(self, doc: dict, album_rowid: int | None = None, disc: Any = None,
               medium: dict | None = None, credit: Any = None) -> None:
        w = self.w
        if w.tracks.get(doc["id"]) is not None:
            w.report.duplicates += 1
            return
        recording = doc.get("recording") if isinstance(doc.get("recording"), dict) else {}
        isrcs = [i for i in recording.get("isrcs") or [] if isinstance(i, str)]
        length = doc.get("length") if isinstance(doc.get("length"), int) else recording.get(
            "length")
        extra = _without(doc, "id", "title", "position", "length", "recording")
        extra["recording"] = _without(recording, "id", "isrcs")
        if len(isrcs) > 1:
            extra["isrcs"] = isrcs
        if medium:
            extra["medium"] = medium
        credits = self.credits(doc.get("artist-credit") or recording.get("artist-credit")
                               or credit)
        rowid = w.insert_track(
            ext_id=doc["id"], mbid=recording.get("id"), name=doc.get("title"),
            album_rowid=album_rowid, disc_number=disc if isinstance(disc, int) else None,
            track_number=doc.get("position") if isinstance(doc.get("position"), int) else None,
            duration_ms=length if isinstance(length, int) else None,
            isrc=isrcs[0] if isrcs else None, extra=dumps(extra),
        )
        w.link_track_artists(rowid, credits)

    def _recording(self, doc: dict) -> None:
        """A recording on its own (not placed on a release) becomes a track without album."""
        w = self.w
        if w.tracks.get(doc["id"]) is not None:
            w.report.duplicates += 1
            return
        isrcs = [i for i in doc.get("isrcs") or [] if isinstance(i, str)]
        extra = _without(doc, "id", "title", "length", "isrcs", "artist-credit")
        if len(isrcs) > 1:
            extra["isrcs"] = isrcs
        rowid = w.insert_track(
            ext_id=doc["id"], mbid=doc["id"], name=doc.get("title"),
            duration_ms=doc.get("length") if isinstance(doc.get("length"), int) else None,
            isrc=isrcs[0] if isrcs else None, extra=dumps(extra),
        )
        w.link_track_artists(rowid, self.credits(doc.get("artist-credit")))

    def _acoustid(self, doc: dict) -> None:
        """An AcoustID lookup result: a recording MBID with title, duration and artists."""
        w = self.w
        if w.tracks.get(doc["id"]) is not None:
            w.report.duplicates += 1
            return
        duration = doc.get("duration")
        artists = [(self.artist_rowid(a), None) for a in doc.get("artists") or []]
        rowid = w.insert_track(
            ext_id=doc["id"], mbid=doc["id"], name=doc.get("title"),
            duration_ms=round(duration * 1000) if isinstance(duration, int | float) else None,
            extra=dumps(_without(doc, "id", "title", "duration", "artists")),
        )
        w.link_track_artists(rowid, [(a, j) for a, j in artists if a is not None])
