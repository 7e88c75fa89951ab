"""The bag declaration (bagit.txt, RFC 8493 2.1.1) and bag metadata (bag-info.txt, 2.2.2),
read to the letter: each rule broken is one line in the report, naming the rule."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from pathlib import Path

from musicark.verify.bagtext import not_text, tag_lines
from musicark.verify.report import INVALID, UNREADABLE, UNSUPPORTED, WARNING

# (kind, detail) → the report; the caller knows the file.
Say = Callable[[str, str], None]

_VERSION = re.compile(r"(\d{1,9})\.(\d{1,9})")
# 2.2.2: a label, a colon, one space or tab, a value; the label neither starts nor ends with
# whitespace. Bags older than 1.0 may put more whitespace around the colon.
_ELEMENT = re.compile(r"([^:\s](?:[^:]*[^:\s])?):[ \t](.*)", re.S)
_ELEMENT_OLD = re.compile(r"([^:\s](?:[^:]*[^:\s])?)[ \t]*:[ \t]*(.*)", re.S)
_DECLARED = re.compile(r"([^:\s]+):[ \t](\S+)")  # 2.1.1: 'BagIt-Version: M.N', no more
ONCE = ("Payload-Oxum",)  # 2.2.2: MUST NOT be repeated
SHOULD_BE_ONCE = ("Bagging-Date", "Bag-Size", "Bag-Group-Identifier", "Bag-Count")


def read_declaration(path: Path, say: Say) -> tuple[str, str] | None:
    """bagit.txt → (version, Python codec name); None when the bag cannot be read on."""
    try:
        data = path.read_bytes()[:4096 + 1]
    except OSError as exc:
        say(UNREADABLE, f"cannot read: {exc.strerror or exc}")
        return None
    if len(data) > 4096:
        say(INVALID, "bagit.txt is over 4 KiB: a bag declaration is two short lines")
        return None
    if data.startswith(codecs.BOM_UTF8):
        say(INVALID, "starts with a byte order mark (RFC 8493 2.1.1: it MUST NOT)")
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        say(INVALID, "not UTF-8 (RFC 8493 2.1.1: the bag declaration is UTF-8)")
        return None
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()  # the last line's own ending
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        m = _ELEMENT_OLD.fullmatch(line)
        if not m:
            say(INVALID, f"line {number} is not 'Label: value': {line[:80]!r}")
            continue
        values.setdefault(m.group(1), m.group(2))
    version = values.get("BagIt-Version", "")
    v = _VERSION.fullmatch(version)
    strict = v is None or (int(v.group(1)), int(v.group(2))) >= (1, 0)
    expected = ["BagIt-Version", "Tag-File-Character-Encoding"]
    for number, line in enumerate(lines, 1):
        m = _ELEMENT_OLD.fullmatch(line)
        if m and strict and not _DECLARED.fullmatch(line):
            say(INVALID, f"line {number} has stray whitespace: {line[:80]!r} (RFC 8493 "
                "2.1.1: exactly 'Label: value')")
        if m and number <= 2 and m.group(1) != expected[number - 1]:
            say(INVALID, f"line {number} is {m.group(1)!r}; RFC 8493 2.1.1 wants "
                f"{expected[number - 1]} there")
    if len(lines) != 2:
        say(INVALID, f"{len(lines)} lines; RFC 8493 2.1.1 wants exactly two "
            "(BagIt-Version, then Tag-File-Character-Encoding)")
    if v is None:
        say(INVALID, f"BagIt-Version is missing or not M.N: {version[:40]!r}")
    elif int(v.group(1)) >= 2:
        say(UNSUPPORTED, f"BagIt-Version {version}: this validator knows 0.9x and 1.x")
    if "Tag-File-Character-Encoding" not in values:
        say(INVALID, "Tag-File-Character-Encoding is missing")
    encoding = values.get("Tag-File-Character-Encoding", "UTF-8")
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        codec = None
    if codec is None or not getattr(codec, "_is_text_encoding", True):  # zlib, rot13, hex...
        say(UNSUPPORTED, f"unknown Tag-File-Character-Encoding {encoding[:40]!r}")
        return version, "utf-8"
    return version, codec.name


def read_info(path: Path, encoding: str, old: bool, say: Say) -> dict[str, list[str]]:
    """bag-info.txt → label → values, in order; continuation lines folded in (their
    leading whitespace is padding, not value)."""
    info: dict[str, list[str]] = {}
    label = None
    element = _ELEMENT_OLD if old else _ELEMENT
    try:
        for number, line in tag_lines(path, encoding):
            if line is None:
                say(INVALID, f"line {number} is longer than any metadata line should be")
                label = None
                continue
            if number == 1 and line.startswith("\ufeff"):
                say(WARNING, "starts with a byte order mark (read past it)")
                line = line[1:]
            if line[:1] in (" ", "\t") and line.strip():
                if label is None:
                    say(INVALID, f"line {number} is indented but continues no element "
                        f"(RFC 8493 2.2.2): {line[:80]!r}")
                else:
                    info[label][-1] += " " + line.strip(" \t")
                continue
            if not line.strip():
                say(WARNING, f"line {number} is blank (not a metadata element)")
                label = None
                continue
            m = element.fullmatch(line)
            if not m:
                say(INVALID, f"line {number} is not 'Label: value' (RFC 8493 2.2.2): "
                    f"{line[:80]!r}")
                label = None
                continue
            label = m.group(1)
            info.setdefault(label, []).append(m.group(2))
    except UnicodeError as exc:
        say(INVALID, not_text(encoding, exc))
    except OSError as exc:
        say(UNREADABLE, f"cannot read: {exc.strerror or exc}")
    for name in ONCE + SHOULD_BE_ONCE:
        count = sum(len(v) for k, v in info.items() if k.lower() == name.lower())
        if count > 1:
            say(INVALID if name in ONCE else WARNING,
                f"{name} appears {count} times (RFC 8493 2.2.2: it "
                + ("MUST NOT" if name in ONCE else "SHOULD NOT") + " be repeated)")
    return info


def oxum(info: dict[str, list[str]], say: Say) -> tuple[int, int] | None:
    """Payload-Oxum as (octets, files); None when absent or malformed (reported)."""
    values = [v for k, vs in info.items() if k.lower() == "payload-oxum" for v in vs]
    if not values:
        return None
    m = re.fullmatch(r"(\d{1,20})\.(\d{1,20})", values[0])  # past 20 digits: absurd
    if not m:
        say(INVALID, f"malformed Payload-Oxum {values[0][:80]!r}")
        return None
    return int(m.group(1)), int(m.group(2))
