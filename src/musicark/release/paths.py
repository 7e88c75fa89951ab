"""Release paths: `<bucket>/<A>/<AB>/<artist>/<year> <album> (<id>)/<NN> <artist> - <title>.<ext>`.

Every component is made portable (no separators or characters Windows forbids, no control
characters, no '%': RFC 8493 has manifests write it %25, which bagit-python does not decode;
no reserved device names, no leading dot or trailing dot/space) and at most 255 bytes of
UTF-8 (NFC). Collisions, including ones that differ only in case, get a deterministic
" (2)", " (3)", ... suffix in the order of the items' sort keys.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_COMPONENT = 255
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*%]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
             *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text` that fits in `limit` bytes of UTF-8 (never half a char)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def sanitize(text: str | None, *, fallback: str = "_", limit: int = MAX_COMPONENT) -> str:
    """One portable path component (no extension handling; see `file_name`)."""
    text = unicodedata.normalize("NFC", text or "")
    text = _FORBIDDEN.sub("_", text)
    text = " ".join(text.split())  # tabs, newlines, runs of spaces → one space
    if text.startswith("."):
        text = "_" + text[1:]
    text = truncate_utf8(text, limit).rstrip(". ")
    if not text:
        return fallback
    if text.split(".")[0].upper() in _RESERVED:
        text = truncate_utf8("_" + text, limit)
    return text


def file_name(stem: str, ext: str, *, suffix: str = "") -> str:
    """A file name ≤ 255 bytes: the stem is cut, never the extension or collision suffix."""
    ext = sanitize(ext.lstrip("."), fallback="") if ext else ""
    tail = suffix + (f".{ext}" if ext else "")
    return sanitize(stem, limit=MAX_COMPONENT - len(tail.encode("utf-8"))) + tail


def index_dirs(artist: str) -> tuple[str, str]:
    """The `<A>/<AB>` index levels: upper-cased leading letters or digits, else '#'."""
    letters = [c for c in unicodedata.normalize("NFC", artist).upper() if c.isalnum()]
    if not letters or not artist[:1].isalnum():
        return "#", "#"
    first = sanitize(letters[0])
    return first, sanitize("".join(letters[:2]))


def track_path(bucket: str, *, artist: str | None, album: str | None, album_id: str,
               year: str | None, disc: int | None, number: int | None, discs: int,
               title: str | None, ext: str) -> tuple[str, ...]:
    """Path components of one payload file (before collision suffixes)."""
    artist_dir = sanitize(artist, fallback="Unknown Artist")
    a, ab = index_dirs(artist_dir)
    album_label = f"{year} {album or 'Unknown Album'}" if year else (album or "Unknown Album")
    album_dir = sanitize(f"{album_label} ({album_id})")
    prefix = f"{number:02d}" if number else "00"
    if discs > 1 and disc:
        prefix = f"{disc}-{prefix}"
    stem = f"{prefix} {artist or 'Unknown Artist'} - {title or 'Untitled'}"
    return (bucket, a, ab, artist_dir, album_dir, file_name(stem, ext))


def numbered(parts: tuple[str, ...], n: int) -> tuple[str, ...]:
    """The path with " (n)" before the file's extension."""
    stem, dot, ext = parts[-1].rpartition(".")
    if not dot:
        stem, ext = parts[-1], ""
    return (*parts[:-1], file_name(stem, ext, suffix=f" ({n})"))


def resolve_collisions(paths: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Paths that share a case-folded form: the first keeps its name, later ones get the
    lowest " (n)" free of every path given and every one assigned (what `layout` does
    with the staged table, here over a list)."""
    taken = {_fold(p) for p in paths}
    seen: set[tuple[str, ...]] = set()
    out = []
    for parts in paths:
        candidate = parts
        if _fold(parts) in seen:
            n = 2
            while _fold(candidate := numbered(parts, n)) in taken:
                n += 1
            taken.add(_fold(candidate))
        seen.add(_fold(candidate))
        out.append(candidate)
    return out


def _fold(parts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", p).casefold() for p in parts)
