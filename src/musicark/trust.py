"""Values taken from release data (a shard, its files.jsonl, torrents.json, a snapshot) made
into checked values: a digest, a path inside a folder, a bounded integer, parsed JSON.

A release comes from strangers, so each value is checked here, in one place, before anything
is opened, written or queried with it (as CPython's tarfile data filter does for archive
members): the check raises `Refused` naming the rule that was broken, and callers use the
value this module returns, never the raw one.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Any

from musicark.errors import MusicarkError

_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_INT = 2**63 - 1  # SQLite's INTEGER
MAX_PATH_BYTES = 4096


class Refused(MusicarkError, ValueError):
    """A value from release data that breaks a trust rule; the message names the rule."""

    exit_code = 2


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def digest(value: object, what: str = "sha256") -> str:
    """`value` if it is exactly 64 lowercase hex characters (a SHA-256), else Refused."""
    if not is_digest(value):
        raise Refused(f"{what} is not 64 lowercase hex characters: {_show(value)}")
    return str(value)


def integer(value: object, what: str, *, low: int = 0, high: int = MAX_INT) -> int:
    """An int (not a bool, not a float, not a string) within [low, high], else Refused."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Refused(f"{what} is not an integer from {low} to {high}: {_show(value)}")
    return value


def relative_path(value: object, what: str = "path") -> str:
    """A relative, normalized POSIX path: no absolute part, no `.` or `..`, no empty part,
    no NUL or backslash; the exact string given, else Refused."""
    if not isinstance(value, str) or not value:
        raise Refused(f"{what} is not a non-empty string: {_show(value)}")
    why = ("holds a NUL" if "\0" in value else "holds a backslash" if "\\" in value
           else "is absolute" if value.startswith("/")
           else "is not normalized (., .. or an empty part)"
           if posixpath.normpath(value) != value or value in (".", "..")
           or ".." in value.split("/") else None)
    if why is None and len(value.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        why = f"is longer than {MAX_PATH_BYTES} bytes"
    if why is not None:
        raise Refused(f"{what} {why}: {_show(value)}")
    return value


def inside(root: Path, value: object, what: str = "path") -> Path:
    """`root / value`, once `value` is a safe relative path and, symlinks resolved, the
    place it names stays inside `root` (resolved too); else Refused."""
    rel = relative_path(value, what)
    base = os.path.realpath(root)
    real = os.path.realpath(os.path.join(base, rel))
    if os.path.commonpath([real, base]) != base:
        raise Refused(f"{what} {_show(rel)} leads outside {root} (to {real})")
    return Path(root) / rel


def regular_file(root: Path, value: object, what: str = "path") -> Path:
    """`inside(root, value)` that is a regular file (not a symlink, FIFO, device or
    directory) right now; else Refused."""
    path = inside(root, value, what)
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise Refused(f"{what} {_show(value)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise Refused(f"{what} {_show(value)} is not a regular file")
    return path


def not_symlink_dir(path: Path, root: Path, what: str) -> Path:
    """A folder found inside `root` (a shard in a release): a real directory whose resolved
    place is inside `root`, never a symlink to elsewhere; else Refused."""
    if path.is_symlink():
        raise Refused(f"{what} {path} is a symbolic link (to {os.readlink(path)!r}): "
                      "a fetched release holds only real folders")
    return inside(root, path.relative_to(root).as_posix(), what)


def loads(text: str | bytes, what: str) -> Any:
    """JSON from a stranger: Refused (not RecursionError or a traceback) for nesting that
    is too deep, a number too long to convert, or anything else that is not JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise Refused(f"{what}: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise Refused(f"{what}: not JSON ({str(exc)[:120]})") from None


def read_regular(path: Path, what: str, *, limit: int) -> bytes:
    """The bytes of a regular file (symlinks not followed, FIFOs never waited on) of at
    most `limit` bytes; Refused otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        why = "is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise Refused(f"{what} {path}: {why}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{what} {path} is not a regular file")
        if info.st_size > limit:
            raise Refused(f"{what} {path} is {info.st_size:,} bytes, more than the "
                          f"{limit:,} allowed")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise Refused(f"{what} {path} grew past {limit:,} bytes while read")
        return data
    finally:
        os.close(fd)
