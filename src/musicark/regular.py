"""Reading only regular files: a path a user or a stranger names may be a FIFO (a read
waits forever for a writer), a device (`/dev/zero` never ends) or a socket. Ingest, the
catalog importers and the listens importers all open their inputs through here."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from musicark.errors import BadSource, MusicarkError


class NotRegularFile(MusicarkError):
    """A device, FIFO or socket: reading it could block forever or never end."""


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISDIR, "directory"), (stat.S_ISREG, "regular file")):
        if test(mode):
            return name
    return "special file"


def open_regular(path: Path | str | bytes) -> tuple[int, os.stat_result]:
    """Open a file for reading only if it is a regular file; returns (fd, fstat).

    O_NONBLOCK keeps a FIFO from waiting for a writer, and the check is on the opened file
    (fstat), so a path swapped for a device after a stat is still caught."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(f"not a regular file ({file_kind(st.st_mode)})")
    return fd, st


def open_input(path: Path) -> tuple[BinaryIO, int]:
    """An input file opened for reading, and its size; BadSource (exit 6, one line naming
    the path) for a missing or unreadable file, a directory, a FIFO, a device or a socket."""
    try:
        fd, st = open_regular(path)
    except NotRegularFile as exc:
        raise BadSource(f"{path}: {exc}; only regular files are read") from None
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or exc
        raise BadSource(f"{path}: {reason}") from None
    return os.fdopen(fd, "rb"), st.st_size


def require_regular(path: Path) -> None:
    """Refuse, before anything is recorded, a path that `open_input` would refuse."""
    fh, _ = open_input(path)
    fh.close()
