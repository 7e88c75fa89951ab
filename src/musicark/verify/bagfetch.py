"""fetch.txt (RFC 8493 2.2.3): payload files a bag names but does not hold yet.

musicark downloads nothing: a file fetch.txt lists and the bag lacks makes the bag
incomplete ("holey"), and the report says what to fetch (URL, length, path). Once the files
are in place, the same bag validates. Every entry is hostile until checked: its path must be
a safe payload path that every payload manifest lists, its URL absolute, its length a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from musicark.verify.bagtext import clean_path, not_text, tag_lines
from musicark.verify.report import INVALID, UNREADABLE

_LINE = re.compile(r"(\S+)[ \t]+(\S+)[ \t]+(.+)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")  # RFC 3986 absolute URI, roughly


@dataclass(frozen=True)
class Fetch:
    url: str
    length: int | None  # None: '-' (unknown)
    path: str

    def as_dict(self) -> dict:
        return {"url": self.url, "length": self.length, "path": self.path}


def read_fetch(path: Path, encoding: str, manifests: dict[str, dict[str, str]],
               say: Callable[[str, str], None]) -> dict[str, Fetch]:
    """fetch.txt → payload path → Fetch; each broken rule is reported and its line skipped."""
    entries: dict[str, Fetch] = {}
    try:
        for number, line in tag_lines(path, encoding):
            if line is None:
                say(INVALID, f"line {number} is longer than any fetch entry should be")
                continue
            if not line.strip():
                continue
            m = _LINE.fullmatch(line)
            if not m:
                say(INVALID, f"line {number} is not '<url> <length> <path>': {line[:80]!r}")
                continue
            url, length, raw = m.groups()
            rel, unsafe = clean_path(raw)
            problem = (
                "the URL is not absolute (RFC 8493 2.2.3)" if not _SCHEME.fullmatch(url)
                else "the length is neither a number nor '-'"
                if not re.fullmatch(r"-|\d{1,20}", length)
                else f"unsafe path: {unsafe}" if unsafe
                else f"{rel!r} is not a payload file (fetch.txt lists only files in data/)"
                if not rel.startswith("data/")
                else f"{rel!r} is listed twice" if rel in entries
                else None)
            if problem is None:
                lacking = sorted(f"manifest-{a}.txt" for a, e in manifests.items()
                                 if rel not in e)
                if lacking:
                    problem = (f"{rel!r} is not in {', '.join(lacking)} (every fetched file "
                               "must be in every payload manifest)")
            if problem:
                say(INVALID, f"line {number}: {problem}")
                continue
            entries[rel] = Fetch(url, None if length == "-" else int(length), rel)
    except UnicodeError as exc:
        say(INVALID, not_text(encoding, exc))
    except OSError as exc:
        say(UNREADABLE, f"cannot read: {exc.strerror or exc}")
    return entries
