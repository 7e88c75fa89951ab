"""The content-addressed store: immutable files at store/sha256/ab/cd/<sha256>.

A file enters through a temporary file in the same filesystem: write (or hardlink), fsync,
verify the SHA-256 of what landed, then an atomic rename. A kill at any point leaves at most
an orphan in store/tmp/, which `clean_tmp` removes; never a half file under its final name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from musicark.errors import FixityError

CHUNK = 1 << 20


class ChecksumMismatch(FixityError):
    """Bytes that landed in (or were rebuilt from) the store are not the bytes expected."""


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in 1 MiB chunks (hashlib drops the GIL)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put(self, src: Path, *, link: bool = False, expected: str | None = None) -> tuple[str, int]:
        """Add a file's bytes; returns (sha256, size). Idempotent: known content is not copied.

        With `link`, a reflink (copy-on-write clone: Btrfs, XFS; independent of the source
        afterwards) is tried first, then a hardlink (same filesystem; the source must never
        be modified afterwards), else the bytes are copied.
        """
        self.tmp.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            linked = link and (_reflink(src, tmp) or _hardlink(src, tmp))
            if linked:
                sha, size = sha256_file(tmp)
            else:
                sha, size = self._copy(src, tmp)
                verify, _ = sha256_file(tmp)
                if verify != sha:
                    raise ChecksumMismatch(f"{src}: bytes changed while copying into the store")
            if expected is not None and sha != expected:
                raise ChecksumMismatch(f"{src}: SHA-256 {sha} differs from the expected {expected}")
            final = self.path_for(sha)
            if final.exists():
                return sha, size
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            if not linked:
                os.chmod(final, 0o444)
            _fsync_dir(final.parent)
            return sha, size
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _copy(src: Path, dst: Path) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        return digest.hexdigest(), size

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


def _reflink(src: Path, dst: Path) -> bool:
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            os.fsync(fout.fileno())
        return True
    except OSError:
        dst.unlink(missing_ok=True)
        return False


def _hardlink(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
        return True
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
