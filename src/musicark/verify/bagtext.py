"""Reading a bag's tag files as RFC 8493 writes them: lines, paths and names.

Tag files come from strangers. Lines end with LF, CR or CRLF and nothing else (a payload name
may hold a form feed or U+2028, which `str.splitlines` would cut at); they are decoded as they
are read, and a line longer than any file name could be is reported, never held whole.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

LINE_LIMIT = 65_536  # characters: past PATH_MAX (4,096 bytes) many times over
CHUNK = 1 << 20
_EOL = re.compile(r"\r\n|\r|\n")
_ENCODED = re.compile(r"%(0[AaDd]|25)")
_STRAY_PERCENT = re.compile(r"%(?!0[AaDd]|25)")

# Files an operating system drops into any folder it shows (Finder, Explorer): not payload.
JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", "Icon\r"})


def tag_lines(path: Path, encoding: str, limit: int = LINE_LIMIT
              ) -> Iterator[tuple[int, str | None]]:
    """(line number, text) for each line of a tag file, line endings removed; a line longer
    than `limit` characters comes back as None. Raises OSError, UnicodeError."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number, held, skipping = 0, "", False
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            final = not chunk
            text = held + decoder.decode(chunk, final=final)
            if not final and text.endswith("\r"):  # a CRLF cut in two: wait for the LF
                text, tail = text[:-1], "\r"
            else:
                tail = ""
            parts = _EOL.split(text)
            held = parts.pop()
            for part in parts:
                number += 1
                if skipping:
                    skipping = False
                    continue
                yield number, part if len(part) <= limit else None
            if len(held) > limit:
                if not skipping:
                    yield number + 1, None
                skipping, held = True, ""
            held += tail
            if final:
                break
    if held and not skipping:
        yield number + 1, held if len(held) <= limit else None


def not_text(encoding: str, exc: UnicodeError) -> str:
    """One line for a tag file its declared encoding cannot read (a UTF-16 file without its
    byte order mark raises a bare UnicodeError, with no position)."""
    where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
    return f"not {encoding} text: {getattr(exc, 'reason', None) or exc}{where}"


def decode_path(text: str) -> str:
    """Undo RFC 8493's percent-encoding of CR, LF and % (and of nothing else)."""
    return _ENCODED.sub(lambda m: chr(int(m.group(1), 16)), text)


def stray_percent(text: str) -> bool:
    """A '%' that starts none of %0A, %0D, %25: RFC 8493 wants it written %25."""
    return bool(_STRAY_PERCENT.search(text))


def clean_path(raw: str) -> tuple[str, str | None]:
    """A manifest or fetch.txt path, decoded and normalised: ('data/a.txt', None), or
    (raw, why it is refused). './' and doubled slashes name the same file (RFC 3986
    dot-segments, POSIX path resolution); '..' is refused even when it stays inside, as
    what it resolves to depends on links the bag may hold."""
    if (raw and "%" not in raw and "\0" not in raw and "//" not in raw and "/." not in "/" + raw
            and not raw.startswith("/") and not raw.endswith("/")):
        return raw, None  # the common case, already clean (no dot or empty segment)
    path = decode_path(raw)
    if "\0" in path:
        return raw, "a NUL character (no file can have this name)"
    if path.startswith("/"):
        return raw, "an absolute path (outside the bag)"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        return raw, "'..' in the path (it could leave the bag)"
    if not parts:
        return raw, "an empty path"
    return "/".join(parts), None


def is_junk(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name in JUNK_NAMES or name.startswith("._")


def look_alikes(names: Iterable[str]) -> list[tuple[str, str, str]]:
    """Pairs of names that one file system would take as one file: (a, b, 'Unicode
    normalization' or 'case'). Such a bag cannot be unpacked whole on macOS or Windows."""
    found, by_nfc, by_fold = [], {}, {}
    for name in sorted(names):
        nfc = unicodedata.normalize("NFC", name)
        if nfc in by_nfc:
            found.append((by_nfc[nfc], name, "Unicode normalization"))
            continue
        by_nfc[nfc] = name
        fold = nfc.casefold()
        if fold in by_fold:
            found.append((by_fold[fold], name, "case"))
        else:
            by_fold[fold] = name
    return found
