"""The content-addressed store: immutable files at store/sha256/ab/cd/<sha256>.

A file enters through a temporary file in the same filesystem: copy while hashing (the
very buffer hashed is the buffer written, in one pass), or reflink/hardlink and hash what
landed; fsync, then an atomic rename. A kill at any point leaves at most an orphan in
store/tmp/, which `clean_tmp` removes; never a half file under its final name.

Reading: `preadv` into one reused 1 MiB buffer (no new bytes object per chunk, the buffer
stays in the CPU cache) with sequential read-ahead advised. Not mmap: a source truncated
while mapped raises SIGBUS and kills the worker, where a read just returns fewer bytes and
the file is reported as changed while reading.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

from musicark import trust
from musicark.errors import FixityError, MusicarkError
from musicark.regular import NotRegularFile, file_kind, open_regular  # noqa: F401 - re-exported

CHUNK = 1 << 20


class ChecksumMismatch(FixityError):
    """Bytes that landed in (or were rebuilt from) the store are not the bytes expected."""


class SourceChanged(MusicarkError):
    """The source changed (grew, shrank, was rewritten or replaced) while it was read."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(f"changed while reading ({why})")


def same_file(a: os.stat_result, b: os.stat_result) -> str | None:
    """What differs between two stats of what should be one unchanged file, or None."""
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        return "replaced by another file"
    if a.st_size != b.st_size:
        return f"size {a.st_size:,} became {b.st_size:,} bytes"
    if a.st_mtime_ns != b.st_mtime_ns:
        return "modified"
    return None


def _chunks(fd: int, limit: int | None = None) -> Iterator[memoryview]:
    """The file's bytes from offset 0, as views of one reused buffer (each valid until the
    next is asked for), at most `limit` bytes. Sequential read-ahead is advised."""
    with suppress(OSError):  # a filesystem without read-ahead advice reads the same bytes
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    offset = 0
    while limit is None or offset < limit:
        want = CHUNK if limit is None else min(CHUNK, limit - offset)
        got = os.preadv(fd, [view[:want]], offset)
        if not got:
            return
        offset += got
        yield view[:got]


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file (hashlib drops the GIL while hashing)."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for chunk in _chunks(fd):
            digest.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest(), size


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path_for(self, sha256: str) -> Path:
        """Where the object of `sha256` lives. Only a digest (64 lowercase hex) makes a
        path: anything else (`/etc/passwd`, `../x`) is refused (`musicark.trust.Refused`, a
        ValueError), so no caller can hand the store a path through a ledger row."""
        sha256 = trust.digest(sha256)
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put(self, src: Path, *, link: bool = False, expected: str | None = None,
            scanned: os.stat_result | None = None, trusted: bool = False,
            sync_dir: bool = True) -> tuple[str, int]:
        """Add a file's bytes; returns (sha256, size). Idempotent: known content is not copied.

        Only a regular file is read (NotRegularFile otherwise), and never more than its size
        at `scanned` (the stat taken when it was found): a file that grows, shrinks, is
        rewritten or replaced while it is read raises SourceChanged and stores nothing.

        With `link`, a reflink (copy-on-write clone: Btrfs, XFS; independent of the source
        afterwards) is tried first, then a hardlink (same filesystem), else the bytes are
        copied. Every store object is made read-only (0444); for a hardlink that is the
        source's inode too, so an in-place write to the source fails instead of silently
        changing the store (a write that replaces the file by renaming does not touch it).

        `trusted` (with `link`, `expected` and `scanned`): the caller hashed these bytes
        after taking `scanned` (a mirror's shard check), so a link of the file, unchanged
        since (same inode, size and mtime), is not read a second time.

        `sync_dir=False` leaves the rename's directory entry unsynced: the caller promises a
        `sync()` of the store before it records the object (ingest does one a ledger batch
        instead of one fsync a file). The object's bytes are fsynced before the rename
        either way, so a crash leaves the object whole or not there, never half.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        fd, st = open_regular(src)
        trusted = trusted and scanned is not None and expected is not None
        scanned = scanned or st
        try:
            if (why := same_file(scanned, st)) is not None:
                raise SourceChanged(why)
            linked = link and (_reflink(fd, tmp) or _hardlink(src, tmp, st))
            if linked and trusted:
                sha, size = str(expected), scanned.st_size
            elif linked:
                with open(tmp, "rb") as fh:
                    sha, size = _hash_at_most(fh.fileno(), scanned.st_size)
            else:
                # The bytes written are the bytes hashed (one buffer): re-reading them would
                # read the same page-cache pages back, not the disk. The store audit
                # (`verify`) checks what reached the disk.
                sha, size = self._copy(fd, tmp, scanned.st_size)
            if (why := same_file(scanned, os.fstat(fd))) is not None:
                raise SourceChanged(why)
            if expected is not None and sha != expected:
                raise ChecksumMismatch(f"{src}: SHA-256 {sha} differs from the expected {expected}")
            final = self.path_for(sha)
            if final.exists():
                return sha, size
            if not _make_read_only(tmp) and linked:
                # A hardlinked source we may not chmod: copy it instead, so the store never
                # shares a writable inode with it.
                tmp.unlink()
                if self._copy(fd, tmp, scanned.st_size)[0] != sha:
                    raise SourceChanged("modified")
                os.chmod(tmp, 0o444)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            if sync_dir:
                _fsync_dir(final.parent)
            return sha, size
        finally:
            os.close(fd)
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _copy(fd: int, dst: Path, limit: int) -> tuple[str, int]:
        """Copy at most `limit` bytes of `fd` to a new `dst` and hash them in the same pass;
        SourceChanged if the source holds more. The copy is fsynced."""
        digest = hashlib.sha256()
        size = 0
        with open(dst, "wb", buffering=0) as fout:
            for chunk in _chunks(fd, limit):
                digest.update(chunk)
                written = 0
                while written < len(chunk):
                    written += fout.write(chunk[written:])
                size += len(chunk)
            if size == limit and os.pread(fd, 1, size):
                raise SourceChanged(f"grew past its {limit:,} bytes at scan time")
            os.fsync(fout.fileno())
        return digest.hexdigest(), size

    def sync(self) -> None:
        """Make every store write so far durable: syncfs(2) of the store's filesystem (one
        call for a batch of renames), else sync(2)."""
        fd = os.open(self.root, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc_syncfs(fd) != 0:
                os.sync()
        finally:
            os.close(fd)

    @contextmanager
    def writing(self, *, clean: bool = False) -> Iterator[int]:
        """Hold the store's shared writer lock for a run (ingest, derive, tag). With `clean`,
        first remove orphan temporary files, but only when no other run is writing; yields
        how many were removed."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        with open(self.tmp / ".lock", "w") as lock:
            removed = 0
            if clean:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    removed = self.clean_tmp()
                except BlockingIOError:
                    pass  # another run is writing: its temporary files are not orphans
            fcntl.flock(lock, fcntl.LOCK_SH)
            yield removed

    def unrecorded(self, conn) -> int:
        """How many store objects have no `files` row (left by an interrupted run)."""
        root = self.root / "sha256"
        names = [p.name for p in root.glob("*/*/*")] if root.is_dir() else []
        known = 0
        for i in range(0, len(names), 500):
            batch = names[i:i + 500]
            known += conn.execute(
                f"SELECT count(*) FROM files WHERE sha256 IN ({','.join('?' * len(batch))})",
                batch).fetchone()[0]
        return len(names) - known

    def clean_tmp(self) -> int:
        """Remove temporary files a killed run left behind; returns how many. Call it only
        under `writing(clean=True)`, which makes sure no other run is writing."""
        if not self.tmp.is_dir():
            return 0
        removed = 0
        for part in self.tmp.glob("*.part"):
            part.unlink(missing_ok=True)
            removed += 1
        return removed


FICLONE = 0x40049409  # ioctl number of the Linux copy-on-write clone


# (source device, store device) pairs whose filesystem cannot clone: not tried again in this
# process (a failed try costs a create, an ioctl and an unlink per file).
_NO_REFLINK: set[tuple[int, int]] = set()
CANNOT_CLONE = {errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS}


def _reflink(fd: int, dst: Path) -> bool:
    devices = (os.fstat(fd).st_dev, os.stat(dst.parent).st_dev)
    if devices in _NO_REFLINK:
        return False
    try:
        with open(dst, "wb") as fout:
            fcntl.ioctl(fout.fileno(), FICLONE, fd)
            os.fsync(fout.fileno())
        return True
    except OSError as exc:
        dst.unlink(missing_ok=True)
        if exc.errno in CANNOT_CLONE:
            _NO_REFLINK.add(devices)
        return False


def _hardlink(src: Path, dst: Path, opened: os.stat_result) -> bool:
    """Hardlink `src`, if it is still the file that was opened (the path may have been
    swapped since)."""
    try:
        os.link(src, dst, follow_symlinks=True)
    except OSError:
        return False
    if same_file(opened, os.stat(dst)) is not None:
        dst.unlink()
        return False
    return True


def _hash_at_most(fd: int, limit: int) -> tuple[str, int]:
    """SHA-256 and size of the first `limit` bytes; SourceChanged if there are more."""
    digest = hashlib.sha256()
    offset = 0
    for chunk in _chunks(fd, limit):
        digest.update(chunk)
        offset += len(chunk)
    if offset == limit and os.pread(fd, 1, offset):
        raise SourceChanged(f"grew past its {limit:,} bytes at scan time")
    return digest.hexdigest(), offset


def _make_read_only(path: Path) -> bool:
    """chmod 0444, the one place store objects become read-only; False if not permitted."""
    try:
        os.chmod(path, 0o444)
        return True
    except PermissionError:
        return False


@lru_cache(maxsize=1)
def _syncfs():
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def _libc_syncfs(fd: int) -> int:
    call = _syncfs()
    return -1 if call is None else call(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
