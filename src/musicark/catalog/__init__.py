"""The catalog: import, export, search and statistics over catalog.sqlite."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from musicark.archive import Archive
from musicark.catalog.importers.base import Progress, corrupt_input, logical_name, no_progress
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
) -> ImportReport:
    """Import one source atomically: all of it lands, or (on any error or kill) none of it."""
    src = Path(src)
    if fmt not in IMPORT_FORMATS:
        raise BadQuery(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    if not src.exists():
        raise BadSource(f"{src} does not exist")
    if not src.is_dir():
        require_regular(src)  # a FIFO would block, /dev/zero would never end
    options = {"mapping": mapping} if mapping else None
    try:
        return _import(archive, fmt, src, name, licence, replace, options, mapping, progress,
                       phase)
    except Exception as exc:
        if corrupt_input(exc):
            raise BadSource(f"{src}: truncated or corrupt compressed data ({exc}); nothing "
                            "was imported") from exc
        raise


def _import(archive: Archive, fmt: str, src: Path, name: str | None, licence: str | None,
            replace: bool, options: dict | None, mapping: dict | None, progress: Progress,
            phase: Callable[[str], None]) -> ImportReport:
    with CatalogWriter(
        archive, name=name or logical_name(src), kind=fmt, uri=str(src.absolute()),
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
