"""Tag and restore verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    JsonOpt,
    PlanOpt,
    WorkersOpt,
    app,
    err,
    handle_errors,
    out,
    print_json,
    safe_line,
)
from musicark.cli.progress import progress_bar, reporter


@app.command()
@handle_errors
def tag(
    plan: PlanOpt = None,
    workers: WorkersOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed catalog metadata into copies of the plan's kept files (no re-encoding), each with
    a zstd patch that restores the untagged bytes exactly.

    Example: musicark tag --plan 3
    """
    from musicark.derive.tagging import tag_files

    with progress_bar(unit="files") as bar:
        task = bar.add_task("tagging", total=None, rate="")
        report = tag_files(Archive.locate(archive), plan, workers=workers,
                           progress=reporter(bar, task))
    if as_json:
        print_json(report)
        return
    if report["nothing_because"]:
        out.print(f"plan {report['plan']}: 0 files to tag: {report['nothing_because']}")
        return
    out.print(f"plan {report['plan']}: tagged {report['tagged']:,} files (median restore patch "
              f"{report['median_patch_bytes'] or 0:,} bytes); {report['already']:,} already "
              f"tagged; {len(report['failed']):,} failed")
    for failure in report["failed"][:10]:
        err.print(f"  file {failure['file']}: {safe_line(failure['reason'])}", highlight=False)


@app.command()
@handle_errors
def restore(
    sha256: Annotated[str, typer.Argument(help="SHA-256 of a tagged file in the store.")],
    output: Annotated[Path, typer.Argument(help="Where to write the untagged original.")],
    archive: ArchiveOpt = None,
) -> None:
    """Rebuild the untagged original of a tagged file, byte for byte (checked by SHA-256).

    Example: musicark restore 3f2a...c9 original.flac
    """
    from musicark.derive.tagging import restore_file

    original = restore_file(Archive.locate(archive, readonly=True), sha256, output)
    out.print(f"restored {safe_line(output)} (sha256 {original})")
