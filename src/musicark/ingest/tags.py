"""Read tags with mutagen: the raw tags as JSON-ready lists, and the common fields.

Every container names fields its own way (ID3 frames, Vorbis comments, MP4 atoms, APEv2 and
ASF attributes); `COMMON` maps the lower-cased names of each onto one set of fields, as
Picard writes them. Multi-valued tags stay lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen

MAX_VALUE_CHARS = 16_384  # a longer value is cut (and the file flagged)
MAX_TOTAL_CHARS = 1 << 20  # more tag text than this is "huge"

COMMON: dict[str, tuple[str, ...]] = {
    "title": ("title", "tit2", "©nam", "wm/title"),
    "artists": ("artist", "tpe1", "©art", "author", "artists"),
    "album": ("album", "talb", "©alb", "wm/albumtitle"),
    "album_artist": ("albumartist", "album artist", "tpe2", "aart", "wm/albumartist"),
    "track_number": ("tracknumber", "track", "trck", "trkn", "wm/tracknumber"),
    "disc_number": ("discnumber", "disc", "tpos", "disk", "wm/partofset"),
    "date": ("date", "year", "tdrc", "tyer", "©day", "wm/year", "originaldate"),
    "isrc": ("isrc", "tsrc", "----:com.apple.itunes:isrc", "wm/isrc"),
    "barcode": ("barcode", "upc", "ean", "txxx:barcode", "----:com.apple.itunes:barcode",
                "wm/barcode"),
    "musicbrainz_recording_id": ("musicbrainz_trackid", "ufid:http://musicbrainz.org",
                                 "----:com.apple.itunes:musicbrainz track id",
                                 "musicbrainz/track id"),
    "musicbrainz_release_id": ("musicbrainz_albumid", "txxx:musicbrainz album id",
                               "----:com.apple.itunes:musicbrainz album id",
                               "musicbrainz/album id"),
    "musicbrainz_artist_id": ("musicbrainz_artistid", "txxx:musicbrainz artist id",
                              "----:com.apple.itunes:musicbrainz artist id",
                              "musicbrainz/artist id"),
    "label": ("label", "organization", "publisher", "tpub", "----:com.apple.itunes:label",
              "wm/publisher"),
    "licence": ("license", "licence", "txxx:license", "wcop", "tcop", "copyright", "cprt",
                "©cpy"),
}
ALIASES = {alias: name for name, aliases in COMMON.items() for alias in aliases}
LIST_FIELDS = {"artists", "musicbrainz_artist_id"}


class BadTags(Exception):
    """mutagen could not read the tags (the message says why)."""


@dataclass
class Tags:
    kind: str | None = None  # mutagen's type name, e.g. "OggVorbis", "MP3"
    raw: dict[str, list[str]] = field(default_factory=dict)
    common: dict[str, Any] = field(default_factory=dict)
    pictures: int = 0
    truncated: bool = False
    total_chars: int = 0


def _text(value: Any) -> tuple[str | None, bool]:
    """A tag value as text; binary data is summarised, never stored."""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>", False
    if hasattr(value, "data") and isinstance(getattr(value, "data", None), bytes):
        return f"<{type(value).__name__} {len(value.data)} bytes>", False
    if isinstance(value, tuple):  # MP4 track/disc numbers
        return "/".join(str(v) for v in value if v), False
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        return text[:MAX_VALUE_CHARS], True
    return text, False


def _values(frame: Any) -> list[Any]:
    if hasattr(frame, "text") and isinstance(frame.text, list):  # ID3 text frames
        return frame.text
    if hasattr(frame, "data") and hasattr(frame, "owner"):  # ID3 UFID
        return [frame.data.decode("ascii", "replace")]
    if hasattr(frame, "url"):
        return [frame.url]
    if isinstance(frame, list):
        return frame
    return [frame]


def read_tags(path: Path) -> Tags:
    """Tags of one file; raises BadTags when mutagen fails on a file it claims."""
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise BadTags(str(exc) or type(exc).__name__) from exc
    except Exception as exc:  # mutagen raises assorted errors on hostile input
        raise BadTags(f"{type(exc).__name__}: {exc}") from exc
    result = Tags(kind=type(audio).__name__ if audio is not None else None)
    if audio is None or audio.tags is None:
        return result
    items = audio.tags.items() if hasattr(audio.tags, "items") else []
    for key, frame in items:
        name = str(key)
        lowered = name.lower()
        if lowered.startswith(("apic", "covr", "metadata_block_picture", "wm/picture")) or \
                name == "pictures":
            result.pictures += 1
            continue
        texts = []
        for value in _values(frame):
            text, cut = _text(value)
            if text is None:
                continue
            result.truncated |= cut
            result.total_chars += len(text)
            texts.append(text)
        result.raw.setdefault(name, []).extend(texts)
        field_name = ALIASES.get(lowered)
        if field_name and texts:
            if field_name in LIST_FIELDS:
                result.common.setdefault(field_name, []).extend(texts)
            else:
                result.common.setdefault(field_name, texts[0])
    if hasattr(audio, "pictures"):
        result.pictures += len(audio.pictures or [])
    _numbers(result.common)
    return result


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' and '١', which int() refuses or
    reads as another number."""
    text = text.strip()
    return text.isascii() and text.isdigit()


def _numbers(common: dict[str, Any]) -> None:
    """'3/12' → track_number 3 (and total 12); dates stay text."""
    for key in ("track_number", "disc_number"):
        value = common.get(key)
        if isinstance(value, str):
            head, _, total = value.partition("/")
            common[key] = int(head) if _digits(head) else None
            if _digits(total):
                common[key.replace("number", "total")] = int(total)
            if common[key] is None:
                del common[key]
    if isinstance(common.get("isrc"), str):
        common["isrc"] = common["isrc"].replace("-", "").strip().upper()
