"""Text the server sends is text every client can parse, whatever the catalog holds.

XML 1.0 (2.2 Char) forbids C0 controls other than tab, LF and CR, lone surrogates, U+FFFE and
U+FFFF, even escaped: one such character in a title makes a strict XML parser reject the whole
response. UTF-8 cannot encode a lone surrogate at all, so orjson and Starlette refuse it (a
500). Titles and tags hold such characters (a lone surrogate comes back from JSON in `extra`
or a file's tags, where `\\ud800` is a valid escape): each is sent as U+FFFD instead. The
clean case, nearly every response, costs one regex scan.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
from markupsafe import Markup

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 forbids replaced by U+FFFD."""
    return _NOT_XML.sub(REPLACEMENT, text)


def html_value(value: Any) -> Any:
    """Jinja2's `finalize`: what a page prints of a value, with the characters XML forbids
    (lone surrogates, noncharacters U+FFFE/U+FFFF, C0 controls: HTML calls them parse
    errors) replaced. Markup stays Markup, so it is not escaped twice."""
    if isinstance(value, Markup):
        return Markup(xml_text(value)) if _NOT_XML.search(value) else value
    if isinstance(value, str):
        return xml_text(value)
    return value


def _utf8_safe(node: Any) -> Any:
    if isinstance(node, str):
        return _SURROGATE.sub(REPLACEMENT, node)
    if isinstance(node, dict):
        return {_utf8_safe(k): _utf8_safe(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_utf8_safe(v) for v in node]
    return node


def json_bytes(content: Any) -> bytes:
    """orjson, and on a lone surrogate (which UTF-8 cannot carry) the same content with
    each one replaced by U+FFFD: the clean case pays nothing."""
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        return orjson.dumps(_utf8_safe(content))


# An absolute path of two or more parts: what is left of one once the archive is named.
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"]+/)+[^\s/'\",;:)]*")


def public_message(message: str, archive: Path) -> str:
    """An error message fit for a client: the archive's folder is written `ARCHIVE` and
    any other absolute path `<path>`, so no response tells where the server keeps files
    (the server log keeps the full message)."""
    for root in sorted({str(archive), os.path.realpath(archive)}, key=len, reverse=True):
        if len(root) > 1:
            message = message.replace(root, "ARCHIVE")
    return _ABSOLUTE.sub("<path>", message)
