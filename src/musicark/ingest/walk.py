"""Walking ingest's paths, and naming every path that was not walked or not read.

`os.walk` drops a folder it cannot list without a word (its `onerror` defaults to None):
an unreadable sub-folder made a whole ingest record nothing and exit 0. Here every such
path becomes a `Skip` with a kind and a reason, which the pipeline records for the run
(`musicark ledger --skipped`), counts in the summary and turns into the exit code.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from musicark.ingest.paths import path_key, shown

# Kinds of skipped paths. The first five are failures (the exit code says so); "archive" and
# "symlinked folder" are ingest's rules, reported so that nothing is left out in silence.
FAILED = ("unwalkable", "unreadable", "vanished", "special", "changed")
KINDS = (*FAILED, "archive", "symlinked folder")


@dataclass(frozen=True)
class Skip:
    path: str | bytes  # a ledger path key (see musicark.ingest.paths)
    kind: str
    reason: str

    @property
    def failed(self) -> bool:
        return self.kind in FAILED

    def line(self) -> str:
        return f"{shown(self.path)}: {self.reason}"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _walk_error(exc: OSError) -> Skip:
    """A folder os.walk could not list."""
    where = exc.filename if exc.filename is not None else b"?"
    raw = os.fsencode(where)
    if exc.errno == errno.ENOENT:
        return Skip(path_key(raw), "vanished", f"folder gone while walked: {_os_reason(exc)}")
    return Skip(path_key(raw), "unwalkable", f"folder not walked: {_os_reason(exc)}")


def unread(result_path: str | bytes, reason: str) -> Skip:
    """The Skip of a file a worker could not read (quarantined by path, nothing stored)."""
    if reason.startswith("not a regular file") or reason == "symlink loop":
        kind = "special"
    elif reason.startswith("changed while reading"):
        kind = "changed"
    elif "No such file" in reason:
        kind = "vanished"
    else:
        kind = "unreadable"
    return Skip(result_path, kind, reason)


class Own:
    """The archive's own folder, recognised by device and inode (so a bind mount or
    another spelling of it is found too) and by its resolved path for the given paths."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = None if folder is None else os.path.realpath(os.fsencode(folder))
        try:
            st = os.stat(self.folder) if self.folder is not None else None
        except OSError:
            st = None
        self.id = None if st is None else (st.st_dev, st.st_ino)

    def holds(self, raw: bytes) -> bool:
        """True when `raw` (a given path) is the archive's folder or inside it."""
        if self.folder is None:
            return False
        real = os.path.realpath(raw)
        return os.path.commonpath([real, self.folder]) == self.folder

    def is_it(self, st: os.stat_result) -> bool:
        return self.id is not None and (st.st_dev, st.st_ino) == self.id

    def skip(self, raw: bytes) -> Skip:
        return Skip(path_key(raw), "archive", "the archive's own folder: never ingested")


def walk(paths: Iterable[Path], *, own: Path | None = None,
         skipped: Callable[[Skip], None] = lambda s: None) -> Iterator[bytes]:
    """Every file under the given paths, as absolute normalized bytes paths (any name
    survives), in a stable order: `rips`, `./rips/` and `/home/me/rips` give the same paths,
    so a rerun from another directory finds them unchanged. Symlinks are kept in the path
    (not resolved); symlinked files are followed, symlinked folders are not (each is
    reported). The archive's own folder `own` is never entered, and every folder that cannot
    be listed is passed to `skipped`."""
    archive = Own(own)
    seen: set[bytes] = set()
    for top in paths:
        raw = os.path.abspath(os.fsencode(top))
        if raw in seen:
            continue
        seen.add(raw)
        if archive.holds(raw):
            skipped(archive.skip(raw))
            continue
        if not os.path.isdir(raw):
            yield raw
            continue
        for root, dirs, files in os.walk(raw, followlinks=False,
                                         onerror=lambda exc: skipped(_walk_error(exc))):
            keep = []
            for name in sorted(dirs):
                full = os.path.join(root, name)
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    kind = "vanished" if exc.errno == errno.ENOENT else "unreadable"
                    skipped(Skip(path_key(full), kind, f"folder not walked: {_os_reason(exc)}"))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    skipped(Skip(path_key(full), "symlinked folder",
                                 "a symlink to a folder: not followed (ingest its target "
                                 "itself)"))
                elif archive.is_it(st):
                    skipped(archive.skip(full))
                else:
                    keep.append(name)
            dirs[:] = keep
            for name in sorted(files):
                yield os.path.join(root, name)
