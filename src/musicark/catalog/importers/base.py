"""What every importer shares: opening (maybe compressed) inputs and reporting progress."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import math
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import zstandard

from musicark.errors import BadSource
from musicark.regular import open_input

Progress = Callable[[int, int | None], None]
"""Called as progress(done, total) with bytes of input read; total may be unknown (None)."""


# 19 digits: orjson reads integers below -2**63 (19 digits) or past 2**64 (20) as floats.
# Found by mapping every digit to "0" and all else to a space, then a substring search: ten
# times the speed of the regex \d{19}, which cost more than orjson's parse of the line.
LONG_RUN = b"0" * 19
DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))


def has_long_digit_run(raw: bytes) -> bool:
    return LONG_RUN in raw.translate(DIGITS_AS_ZERO)


def parse_json(raw: bytes) -> tuple[Any, str | None]:
    """One JSON value, or (None, reason) for a line that cannot be a record, or (value,
    reason) for a value read that cannot be stored (`unstorable`): a bad row either way.

    orjson first (several times faster); whatever it refuses and the standard library
    accepts (NaN, lone surrogate escapes, UTF-16, deep nesting) is read by `json`, and so
    is any line with a 19-digit run (orjson turns integers past 64 bits into floats): every
    line gives exactly the value it always gave."""
    value, problem, _ = parse_json_tagged(raw)
    return value, problem


def parse_json_tagged(raw: bytes) -> tuple[Any, str | None, bool]:
    """`parse_json`, also telling whether orjson read the value: then it holds no NaN or
    infinity, no lone surrogate and no integer outside 64 bits, so orjson writes it exactly."""
    if not has_long_digit_run(raw):
        try:
            return orjson.loads(raw), None, True
        except orjson.JSONDecodeError:
            pass
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON: {exc}", False
    except RecursionError:
        return None, "JSON nested too deeply to read", False
    # orjson refuses lone surrogates; `json` lets them through (\ud800, or raw bytes it
    # decodes with surrogatepass), and no UTF-8 text, SQLite's included, can hold one.
    return value, unstorable(value), False


def unstorable(value: Any, numbers: bool = False) -> str | None:
    """Why a parsed value cannot be stored, or None: a string holding a lone surrogate;
    with `numbers`, also an integer outside 64 bits or a NaN or infinity (for importers
    that put numbers into columns). Such a record is a bad row, never stored altered."""
    stack = [value]
    while stack:  # a loop, not recursion: the value may be nested 1,000 levels deep
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError as exc:
                    return (f"text that UTF-8 cannot hold: a lone surrogate "
                            f"U+{ord(item[exc.start]):04X} in {item[:40]!r}; record not "
                            "imported")
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif numbers and kind is int and not -(1 << 63) <= item < 1 << 63:
            return (f"a number no column can hold: an integer of {len(str(abs(item)))} "
                    "digits; record not imported")
        elif numbers and kind is float and not math.isfinite(item):
            return f"a number no column can hold: {item}; record not imported"
    return None


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


class ZstdFrames(io.RawIOBase):
    """Decompresses concatenated zstd frames, and raises on a file that ends inside a frame
    (zstandard's stream_reader would end quietly there, losing the rest without a word)."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.frame = zstandard.ZstdDecompressor().decompressobj()
        self.pending = b""
        self.offset = 0
        self.in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self.offset == len(self.pending):
            self.pending, self.offset = b"", 0
            chunk = self.src.read(1 << 20)
            if not chunk:
                if self.in_frame:
                    raise zstandard.ZstdError("the file ends inside a zstd frame (truncated)")
                return 0
            while chunk:
                self.in_frame = True
                self.pending += self.frame.decompress(chunk)
                if not self.frame.eof:
                    break
                chunk = self.frame.unused_data
                self.frame = zstandard.ZstdDecompressor().decompressobj()
                self.in_frame = False
        n = min(len(buffer), len(self.pending) - self.offset)
        buffer[:n] = memoryview(self.pending)[self.offset:self.offset + n]
        self.offset += n
        return n

    def close(self) -> None:
        self.src.close()
        super().close()


def corrupt_input(exc: BaseException) -> bool:
    """Whether an exception raised while reading a source means its bytes are damaged
    (a truncated or corrupt .gz/.bz2/.xz/.zst), as opposed to a bug or a full disk."""
    if isinstance(exc, EOFError | zlib.error | lzma.LZMAError | gzip.BadGzipFile
                  | zstandard.ZstdError):
        return True
    # bz2 says "Invalid data stream" with a bare OSError.
    return type(exc) is OSError and exc.errno is None and "data stream" in str(exc)


def open_binary(path: Path, progress: Progress = no_progress) -> BinaryIO:
    """Open a file for reading, decompressing .gz/.bz2/.xz/.zst by suffix, counting progress."""
    raw, total = open_input(path)  # a regular file: never a FIFO, device or socket
    counted = io.BufferedReader(CountingReader(raw, progress, total), 1 << 20)
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=counted)  # type: ignore[return-value]
    if suffix == ".bz2":
        return bz2.BZ2File(counted)  # type: ignore[return-value]
    if suffix == ".xz":
        return lzma.LZMAFile(counted)  # type: ignore[return-value]
    if suffix == ".zst":
        return io.BufferedReader(ZstdFrames(counted), 1 << 20)  # type: ignore[return-value]
    return counted  # type: ignore[return-value]


MAX_LINE = 256 << 20  # a JSON line or dump row longer than this refuses the source


def numbered_lines(path: Path, progress: Progress = no_progress) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, raw line without its newline)."""
    with open_binary(path, progress) as fh:
        # Decompressors return raw streams; a buffered reader makes line iteration fast.
        lines = fh if isinstance(fh, io.BufferedReader) else io.BufferedReader(fh, 1 << 20)
        for number, line in capped_lines(lines, path):
            yield number, line.rstrip(b"\r\n")


def capped_lines(fh: BinaryIO, path: Path | str) -> Iterator[tuple[int, bytes]]:
    """(1-based number, line) of a binary stream, no line longer than MAX_LINE: a small
    .gz of zeros without a newline (or a dump member of them) would otherwise be held in
    memory whole, the way /dev/zero would be."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise BadSource(f"{path}: line {number} is longer than {MAX_LINE >> 20} MiB, the "
                            "most a line may hold; nothing was imported")
        yield number, line


def logical_name(path: Path) -> str:
    """Default source name: the file or directory name without compression suffixes."""
    name = path.name
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


SUPPORTED = ("supported formats are JSON (api-json, musicbrainz-json), an mbdump directory or "
             "tarball (musicbrainz), and CSV, TSV, JSONL or Parquet (table)")


def require_json(path: Path, fmt: str) -> None:
    """Refuse, before anything is recorded, a file that is not JSON at all (XML above all:
    MusicBrainz serves WS/2 as XML by default, and every line of it would be a bad row)."""
    with open_binary(path) as fh:
        head = fh.read(1 << 16)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text or text[:1] in (b"{", b"["):
        return
    if text[:1] == b"<":
        raise BadSource(f"{path}: this is XML; {SUPPORTED} (ask MusicBrainz for fmt=json)")
    start = text[:40].decode("utf-8", "replace").splitlines()[0]
    raise BadSource(f"{path}: not JSON (it starts with {start!r}); --format {fmt} reads JSON; "
                    f"{SUPPORTED}")

