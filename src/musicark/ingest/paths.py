"""How the ledger keeps a path: its exact bytes, so that no two names meet.

A path that is valid UTF-8 (nearly all) is kept as TEXT, readable by any SQLite tool; any
other is kept as a BLOB of its raw bytes. SQLite never finds a TEXT equal to a BLOB, so
`y<0xFF>.ogg` (the raw byte, shown as `y\\xff.ogg`) and a file literally named `y\\xff.ogg`
(backslash, x, f, f) are two keys. Text escapes (`\\xNN`, the form used before migration
15) made them one key: the second file was never stored and reruns called both unchanged.
See docs/decisions.md.
"""

from __future__ import annotations

import os
import re
import sqlite3

UTF8_NOTE = "file name is not valid UTF-8 (kept as bytes; shown with \\x escapes)"
OLD_UTF8_NOTE = "file name is not valid UTF-8 (recorded with \\x escapes)"


def path_key(raw: bytes) -> str | bytes:
    """The ledger key of a path: text when its bytes are UTF-8, else the bytes themselves."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def shown(key: str | bytes | None) -> str | None:
    """A key as text for people: undecodable bytes as `\\xNN` (only the key is exact)."""
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    return key


def as_json(key: str | bytes | None) -> dict[str, str | None]:
    """A key for --json output: `path` as shown, and `path_hex` (its exact bytes) when the
    name is not UTF-8, so a JSON reader can tell the two names above apart."""
    if isinstance(key, bytes):
        return {"path": shown(key), "path_hex": key.hex()}
    return {"path": key}


_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")


def _unescaped(text: str) -> bytes | None:
    """The bytes `backslashreplace` turned into `text`, if it could have (else None)."""
    raw = b"".join(bytes([int(part, 16)]) if i % 2 else part.encode("utf-8")
                   for i, part in enumerate(_ESCAPE.split(text)))
    try:
        raw.decode("utf-8")
        return None  # valid UTF-8: the name was stored as itself, backslashes and all
    except UnicodeDecodeError:
        pass
    return raw if raw.decode("utf-8", "backslashreplace") == text else None


def rekey_escaped_paths(conn: sqlite3.Connection) -> int:
    """Migration 15: turn paths stored with `\\xNN` escapes back into their bytes.

    A stored file with such a name carries the old note, which settles it. A path without
    the note (a skipped or unreadable one) is ambiguous: it is rekeyed when the bytes exist
    on this machine and the literal text does not. Returns how many rows changed."""
    rows = conn.execute(
        "SELECT path, note FROM file_paths WHERE typeof(path) = 'text' AND "
        "path GLOB '*\\x[89a-f][0-9a-f]*'").fetchall()
    changed = 0
    for text, note in rows:
        raw = _unescaped(text)
        if raw is None:
            continue
        if note != OLD_UTF8_NOTE and not (os.path.lexists(raw)
                                          and not os.path.lexists(text)):
            continue
        conn.execute("UPDATE file_paths SET path = ?, note = ? WHERE path = ?",
                     (raw, UTF8_NOTE if note == OLD_UTF8_NOTE else note, text))
        changed += 1
    return changed
