"""`catalog import -`: standard input, spooled to a file beside the catalog.

Every importer may read its input more than once (a CSV's header, then its rows, then the
lines of bad rows; Parquet seeks), so a pipe is first copied to a file in the archive. The
copy stops, and the import is refused, before it takes the disk's last free space: a pipe
can be endless (`yes |`, a stuck producer), which a regular file cannot.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from musicark.errors import BadSource

# By magic bytes: the spool's suffix, so open_binary decompresses it as a named file.
MAGIC = ((b"\x1f\x8b", ".gz"), (b"BZh", ".bz2"), (b"\xfd7zXZ\x00", ".xz"),
         (b"\x28\xb5\x2f\xfd", ".zst"))
KEEP_FREE = 1 << 30  # the copy never leaves less than this free on the archive's disk
CHUNK = 1 << 20


@contextmanager
def spooled(stream: BinaryIO, folder: Path, suffix: str = "") -> Iterator[Path]:
    """Copy `stream` to `stdin{SUFFIX}[.gz|.bz2|.xz|.zst]` in a new folder in `folder`
    (so reports name it "stdin..."); it is removed on leaving, whatever happens. A
    BadSource naming the copy names standard input instead."""
    head = stream.read(CHUNK)
    compression = next((s for magic, s in MAGIC if head.startswith(magic)), "")
    private = folder / f".import-stdin-{uuid.uuid4().hex}"
    private.mkdir()
    path = private / f"stdin{suffix}{compression}"
    try:
        with open(path, "xb") as out:
            written = 0
            chunk = head
            while chunk:
                out.write(chunk)
                written += len(chunk)
                if written % (64 * CHUNK) < len(chunk) and \
                        shutil.disk_usage(folder).free < KEEP_FREE:
                    raise BadSource(f"standard input: stopped after {written:,} bytes, with "
                                    f"less than {KEEP_FREE >> 30} GiB left free on the "
                                    "archive's disk; nothing was imported")
                chunk = stream.read(CHUNK)
        try:
            yield path
        except BadSource as exc:
            raise BadSource(str(exc).replace(str(path), "standard input")) from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
