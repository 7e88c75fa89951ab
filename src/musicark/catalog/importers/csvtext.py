"""CSV and TSV text as the table importer may trust it: UTF-8 checked as it is read, and
rows no longer than one Arrow block.

Why refuse a whole file for one bad byte: bytes that are not UTF-8 mean the file is in
another encoding (Latin-1, Windows-1252, UTF-16). Guessing would mangle every accented name
in it; importing only the rows that happen to be ASCII would drop the others. Either is
wrong for a catalog, and `iconv` fixes the file in one command. Checking here, before
Arrow sees the bytes, also keeps pyarrow from decoding a malformed row itself for its
invalid-row callback, which printed "Exception ignored ... Traceback" on stderr.

Why a row cap: Arrow parses in blocks of `MAX_ROW` (1 MiB), and a row may straddle one
block boundary but not two: a row of up to 1 MiB is always read, one of 1-2 MiB may be
(depending on where it falls), a longer one never. Nor can a quote that is never closed be
parsed, which looks the same (a field running on to the end of the file). Skipping such a
row could not find where the next row starts, so the file is refused with the line where it
begins. Python's csv (header, line numbers of bad rows) gets a cap of two blocks in place of
its 131,072-byte default, so it reads every row Arrow reads.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from musicark.catalog.importers.base import open_binary
from musicark.errors import BadSource

MAX_ROW = 1 << 20  # Arrow's block size: the longest row a CSV/TSV is sure to be read with
CSV_FIELD_LIMIT = 2 * MAX_ROW  # Python's csv: past any row Arrow can read
BOMS = {codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16",
        codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32"}


class NotUtf8(BadSource):
    """A CSV/TSV whose bytes are not UTF-8: refused whole, naming the line."""


class Utf8Checked(io.RawIOBase):
    """Passes bytes through, raising NotUtf8 (with the 1-based line) at the first byte
    that is not UTF-8. Arrow validates each chunk in place (about 1.5 GB/s, where a Python
    decode runs at a third of that); lines are counted only when a file is refused."""

    def __init__(self, src: BinaryIO, path: Path) -> None:
        self.src = src
        self.path = path
        self.pending = b""  # the start of a character cut by the end of the last chunk
        self.passed = 0  # bytes read from src so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        chunk = self.src.read(len(buffer))
        base = self.passed - len(self.pending)  # offset of `data` in the file
        data = self.pending + chunk if self.pending else chunk
        if not chunk:
            if data:
                self._refuse(data, 0, base)
            return 0
        end = _whole_characters(data)
        self.pending = data[end:]
        if not _valid_utf8(memoryview(data)[:end]):
            try:
                data[:end].decode("utf-8")
            except UnicodeDecodeError as exc:
                self._refuse(data, exc.start, base)
        n = len(chunk)
        buffer[:n] = chunk
        self.passed += n
        return n

    def _refuse(self, data: bytes, at: int, base: int) -> None:
        if base + at == 0:
            for bom, name in BOMS.items():
                if data.startswith(bom):
                    raise NotUtf8(f"{self.path}: this is {name} text (it starts with a byte "
                                  f"order mark); save it as UTF-8 (e.g. iconv -f {name} -t "
                                  "UTF-8) and import again; nothing was imported")
        line = _line_at(self.path, base + at)
        byte = f"byte 0x{data[at]:02X}" if at < len(data) else "a character cut short"
        raise NotUtf8(f"{self.path}: line {line} is not UTF-8 text ({byte}); a CSV/TSV must "
                      "be UTF-8: convert it (e.g. iconv -f WINDOWS-1252 -t UTF-8) and import "
                      "again; nothing was imported")

    def close(self) -> None:
        self.src.close()
        super().close()


def _whole_characters(data: bytes) -> int:
    """Where the last whole UTF-8 character of `data` ends (a cut one waits for more)."""
    n = len(data)
    for k in range(n - 1, max(n - 4, 0) - 1, -1):
        b = data[k]
        if b & 0xC0 != 0x80:  # not a continuation byte: an ASCII byte or a lead byte
            size = 1 if b < 0xC0 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4 if b < 0xF8 else 1
            return k if n - k < size else n
    return n


def _valid_utf8(view: memoryview) -> bool:
    offsets = pa.py_buffer(np.array([0, len(view)], np.int32).tobytes())
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(view)]).validate(
            full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _line_at(path: Path, offset: int) -> int:
    """The 1-based line holding byte `offset` (read again: only a refused file pays)."""
    lines = 1
    with open_binary(path) as fh:
        while offset > 0:
            block = fh.read(min(offset, 1 << 20))
            if not block:
                break
            lines += block.count(b"\n")
            offset -= len(block)
    return lines


@contextmanager
def field_limit() -> Iterator[None]:
    """Python's csv reading every field Arrow can (its default cap is 131,072 bytes).
    The limit is process-wide: it is put back on leaving."""
    before = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def oversized_row(text: io.TextIOBase, delimiter: str) -> int | None:
    """The line where the first row Arrow could not read (over MAX_ROW characters, or an
    unclosed quote) starts."""
    with field_limit():
        reader = csv.reader(text, delimiter=delimiter)
        start = 1
        try:
            for values in reader:
                if sum(map(len, values)) + len(values) > MAX_ROW:
                    return start
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


def row_too_long(path: Path, line: int | None) -> BadSource:
    where = f"line {line}: " if line else ""
    return BadSource(f"{path}: {where}a row longer than {MAX_ROW >> 20} MiB (the most a CSV/TSV "
                     "row may hold) or a quote that is never closed; nothing was imported")
