"""Ingest, match and ledger verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    DaskOpt,
    JsonOpt,
    Table,
    WorkersOpt,
    app,
    handle_errors,
    out,
    print_json,
)
from musicark.cli.progress import phase, progress_bar, reporter
from musicark.errors import BadQuery


# -- ingest --------------------------------------------------------------------------------
@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    link: Annotated[bool, typer.Option("--link/--copy", help="Reflink, else hardlink into "
                                       "the store where the filesystem allows, else copy. "
                                       "A hardlink trusts the source to stay unchanged: the "
                                       "shared file is made read-only (0444), and the "
                                       "store's fixity audit finds a source changed in "
                                       "place anyway.")] = False,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    licence: Annotated[str | None, typer.Option(help="Licence of these files.")] = None,
    provenance: Annotated[str | None, typer.Option(help="Where these files came from.")] = None,
    no_fingerprint: Annotated[bool, typer.Option("--no-fingerprint",
                                                 help="Skip Chromaprint.")] = False,
    decode_check: Annotated[bool, typer.Option(
        "--decode-check", help="Decode every frame of every file (slow) instead of the "
        "structure check: every packet demuxed, Ogg page and FLAC frame CRCs, MP3 frame "
        "counts, declared vs demuxed length. `musicark verify --decode` does it later.")] = False,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest audio files into the store and the ledger; bad files are quarantined, never lost.

    Every file with a sign of audio (magic bytes, container or extension) is stored, as ok
    or quarantined with the reason; files with no sign are skipped as not audio and listed
    by `musicark ledger --skipped`. Devices, FIFOs and sockets are never read (quarantined by
    path). Rerunning continues where a killed or interrupted run stopped.

    Example: musicark ingest ~/rips --licence CC-BY-4.0
    """
    from musicark.ingest.pipeline import ingest as run_ingest

    arc = Archive.locate(archive)
    with progress_bar(unit="files") as bar:
        task = bar.add_task("scanning", total=None, rate="")
        advance = reporter(bar, task)

        def step(n: int, result) -> None:
            advance(n, bar.tasks[0].total)

        report = run_ingest(
            arc, paths, link=link, workers=workers, dask=dask, licence=licence,
            provenance=provenance, fingerprint=not no_fingerprint, decode_check=decode_check,
            progress=step,
            counted=lambda total: bar.update(task, total=total, description="ingesting"),
            phase=lambda name: phase(bar, task, name),
        )
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    out.print(f"ingested {data['ingested']:,} files ({data['bytes'] / 1e6:,.1f} MB) in "
              f"{data['seconds']:.1f} s; {data['duplicates']:,} exact duplicates, "
              f"{data['unchanged']:,} unchanged since the last run, "
              f"{data['skipped_not_audio']:,} not audio")
    if data["skipped_not_audio"]:
        out.print("see the paths not stored with: musicark ledger --skipped")
    out.print(f"matched {data['matched_to_catalog']:,} files to catalog tracks; "
              f"{data['near_duplicates']:,} sound like a file already held")
    if data["quarantined"]:
        table = Table("quarantined because", "files", title="quarantine", title_justify="left")
        for reason, n in data["quarantined_by_reason"].items():
            table.add_row(reason, f"{n:,}")
        out.print(table)
        out.print("see them with: musicark ledger --status quarantined")


@app.command()
@handle_errors
def ledger(
    status: Annotated[str | None, typer.Option(
        help="ok, quarantined, withdrawn, damaged or absent (known, not held).")] = None,
    skipped: Annotated[bool, typer.Option("--skipped", help="List the paths ingest did not "
                                          "store (no sign of audio), with the reason.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows (1-10000).")] = 50,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List files in the ledger, with their status, reason and facts; with --skipped, the
    paths ingest did not store because nothing in them looked like audio.

    Example: musicark ledger --status quarantined
    """
    from musicark.ingest.ledger import list_files, list_skipped

    arc = Archive.locate(archive, readonly=True)
    if skipped:
        if status is not None:
            raise BadQuery("--skipped lists paths without a ledger file: drop --status")
        rows = list_skipped(arc, limit=limit)
        if as_json:
            print_json(rows)
            return
        table = Table("size", title="skipped: not stored", title_justify="left")
        table.add_column("path", overflow="fold", ratio=3)
        table.add_column("reason", overflow="fold", ratio=2)
        for r in rows:
            table.add_row(f"{(r['size'] or 0) / 1e6:.1f} MB", r["path"], r["reason"])
        out.print(table)
        return
    rows = list_files(arc, status=status, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("file", "status", "codec", "length", "size")
    table.add_column("path", overflow="fold", ratio=3)
    table.add_column("reason", overflow="fold", ratio=2)
    for r in rows:
        length = r["duration_ms"]
        table.add_row(str(r["rowid"]), r["status"], r["codec"] or "",
                      "" if length is None else f"{length // 60000}:{length // 1000 % 60:02d}",
                      f"{(r['size'] or 0) / 1e6:.1f} MB", r["path"] or "", r["reason"] or "")
    out.print(table)
