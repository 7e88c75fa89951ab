"""What every importer shares: opening (maybe compressed) inputs and reporting progress."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from musicark.errors import BadSource

Progress = Callable[[int, int | None], None]
"""Called as progress(done, total) with bytes of input read; total may be unknown (None)."""


def no_progress(done: int, total: int | None) -> None:
    return None


class CountingReader(io.RawIOBase):
    """Wraps the raw (compressed) file so progress counts bytes actually read from disk."""

    def __init__(self, raw: BinaryIO, progress: Progress, total: int | None) -> None:
        self.raw = raw
        self.progress = progress
        self.total = total
        self.done = 0
        self._reported = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer)
        self.done += n or 0
        if self.done - self._reported >= 1 << 20 or not n:
            self._reported = self.done
            self.progress(self.done, self.total)
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_binary(path: Path, progress: Progress = no_progress) -> BinaryIO:
    """Open a file for reading, decompressing .gz/.bz2/.xz/.zst by suffix, counting progress."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except OSError as exc:
        raise BadSource(f"cannot read {path}: {exc.strerror or exc}") from exc
    total = path.stat().st_size
    counted = io.BufferedReader(CountingReader(raw, progress, total), 1 << 20)
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=counted)  # type: ignore[return-value]
    if suffix == ".bz2":
        return bz2.BZ2File(counted)  # type: ignore[return-value]
    if suffix == ".xz":
        return lzma.LZMAFile(counted)  # type: ignore[return-value]
    if suffix == ".zst":
        return zstandard.ZstdDecompressor().stream_reader(counted)  # type: ignore[return-value]
    return counted  # type: ignore[return-value]


def numbered_lines(path: Path, progress: Progress = no_progress) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, raw line without its newline)."""
    with open_binary(path, progress) as fh:
        # Decompressors return raw streams; a buffered reader makes line iteration fast.
        lines = fh if isinstance(fh, io.BufferedReader) else io.BufferedReader(fh, 1 << 20)
        for number, line in enumerate(lines, start=1):
            yield number, line.rstrip(b"\r\n")


def logical_name(path: Path) -> str:
    """Default source name: the file or directory name without compression suffixes."""
    name = path.name
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name
