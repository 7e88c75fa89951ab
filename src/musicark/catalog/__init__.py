"""The catalog: import, export, search and statistics over catalog.sqlite."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from musicark.archive import Archive
from musicark.catalog.importers.base import Progress, corrupt_input, logical_name, no_progress
from musicark.catalog.importers.stdin import spooled
from musicark.catalog.terms import refresh as refresh_terms
from musicark.catalog.writer import CatalogWriter, ImportReport
from musicark.errors import BadQuery, BadSource
from musicark.regular import require_regular

IMPORT_FORMATS = ("api-json", "musicbrainz", "musicbrainz-json", "table")


def import_source(
    archive: Archive,
    fmt: str,
    src: Path | str,
    *,
    name: str | None = None,
    licence: str | None = None,
    replace: bool = False,
    mapping: dict | None = None,
    progress: Progress = no_progress,
    phase: Callable[[str], None] = lambda name: None,
    stdin: BinaryIO | None = None,
) -> ImportReport:
    """Import one source atomically: all of it lands, or (on any error or kill) none of it.

    `src` "-" reads `stdin` (default: the process's standard input), copied to a file in
    the archive first; it needs a `name`, and a `table` needs its format in `mapping`."""
    src = Path(src)
    if fmt not in IMPORT_FORMATS:
        raise BadQuery(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    options = {"mapping": mapping} if mapping else None
    if str(src) != "-":
        return _import_path(archive, fmt, src, str(src.absolute()), name, licence, replace,
                            options, mapping, progress, phase)
    if not name:
        raise BadQuery("give the source a --name when it comes from standard input")
    if fmt == "table" and not (mapping or {}).get("format"):
        raise BadQuery("say the table format of standard input: --table-format csv, tsv, "
                       "jsonl or parquet")
    suffix = {"musicbrainz": ".tar", "table": ""}.get(fmt, ".json")
    with spooled(stdin or sys.stdin.buffer, archive.path, suffix) as spool:
        return _import_path(archive, fmt, spool, "stdin", name, licence, replace, options,
                            mapping, progress, phase)


def _import_path(archive: Archive, fmt: str, src: Path, uri: str, name: str | None,
                 licence: str | None, replace: bool, options: dict | None,
                 mapping: dict | None, progress: Progress,
                 phase: Callable[[str], None]) -> ImportReport:
    if not src.exists():
        raise BadSource(f"{src} does not exist")
    if not src.is_dir():
        require_regular(src)  # a FIFO would block, /dev/zero would never end
    try:
        return _import(archive, fmt, src, uri, name, licence, replace, options, mapping,
                       progress, phase)
    except Exception as exc:
        if corrupt_input(exc):
            raise BadSource(f"{src}: truncated or corrupt compressed data ({exc}); nothing "
                            "was imported") from exc
        raise


def _import(archive: Archive, fmt: str, src: Path, uri: str, name: str | None,
            licence: str | None, replace: bool, options: dict | None, mapping: dict | None,
            progress: Progress, phase: Callable[[str], None]) -> ImportReport:
    with CatalogWriter(
        archive, name=name or logical_name(src), kind=fmt, uri=uri,
        licence=licence, options=options, replace=replace, phase=phase,
    ) as writer:
        if fmt == "api-json":
            from musicark.catalog.importers.apijson import ApiJsonImporter

            ApiJsonImporter(writer).run(src, progress)
        elif fmt == "table":
            from musicark.catalog.importers.table import TableImporter

            TableImporter(writer, mapping or {}).run(src, progress)
        elif fmt == "musicbrainz":
            from musicark.catalog.importers.mbdump import MbDumpImporter

            MbDumpImporter(writer).run(src, progress)
        else:
            from musicark.catalog.importers.mbjson import MbJsonImporter

            MbJsonImporter(writer).run(src, progress)
    # After the writer's commit: the prefix vocabulary follows the index it was built from.
    phase("search terms")
    began = time.monotonic()
    refresh_terms(archive.conn)
    took = time.monotonic() - began
    writer.report.phases["search terms"] = took
    writer.report.seconds += took
    return writer.report
