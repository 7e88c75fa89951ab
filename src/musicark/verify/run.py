"""`musicark verify` as one library call: the catalog first (the other checks read the
ledger, so a catalog SQLite cannot open stops them, reported as damage), then the store,
then the releases; one combined report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from musicark.archive import CATALOG_NAME, Archive
from musicark.errors import BadQuery
from musicark.verify.catalog import verify_catalog
from musicark.verify.releases import release_bytes, verify_releases
from musicark.verify.report import Report
from musicark.verify.store import ScrubOptions, verify_store

SCOPES = ("all", "store", "releases", "catalog")

# progress(stage, bytes done, bytes total or None)
Progress = Callable[[str, int, int | None], None]


def run_verify(archive_path: Path, what: str = "all", options: ScrubOptions | None = None, *,
               workers: int | None = None, dask: str | object | None = None,
               progress: Progress = lambda stage, done, total: None) -> Report:
    if what not in SCOPES:
        raise BadQuery(f"verify what? {what!r} (one of {', '.join(SCOPES)})")
    if options is not None and options.decode and what not in ("all", "store"):
        raise BadQuery(f"--decode decodes the store's audio: use it with `verify store` or "
                       f"`verify all`, not `verify {what}`")
    if isinstance(dask, str):  # one connection for every stage and shard, not one each
        from distributed import Client

        with Client(dask) as client:
            return run_verify(archive_path, what, options, workers=workers, dask=client,
                              progress=progress)
    report = Report(what)
    archive_path = Path(archive_path)
    catalog = Report("catalog")
    if what in ("all", "catalog"):
        catalog = verify_catalog(archive_path)
        report.merge(catalog)
        database = str(archive_path / CATALOG_NAME)
        if any(p.path == database for p in catalog.damaged):
            # the other checks need the ledger; the damage is recorded nowhere but here
            if what == "all":
                report.notes["skipped"] = ("store and releases: the catalog is damaged "
                                           "(repair it with `musicark repair --catalog-from "
                                           "RELEASE`)")
            return report
    with Archive.open(archive_path) as archive:
        for problem in catalog.damaged:  # a snapshot's damage, in the intact catalog
            archive.record_event("fixity", problem.path, problem.kind,
                                 {"by": "verify catalog", "detail": problem.detail})
        if what == "catalog":
            return report
        if what in ("all", "store"):
            stage = "store (decoding)" if options is not None and options.decode else "store"
            report.merge(verify_store(archive, options, workers=workers, dask=dask,
                                      progress=lambda d, t: progress(stage, d, t)))
        if what in ("all", "releases"):
            total = release_bytes(archive)
            done = 0

            def advance(nbytes: int) -> None:
                nonlocal done
                done += nbytes
                progress("releases", done, total)

            report.merge(verify_releases(archive, workers=workers, dask=dask,
                                         progress=advance))
    return report
