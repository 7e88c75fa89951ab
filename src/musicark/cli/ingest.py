"""Ingest, match and ledger verbs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    DaskOpt,
    JsonOpt,
    WorkersOpt,
    app,
    err,
    handle_errors,
    out,
    print_json,
)


# -- ingest --------------------------------------------------------------------------------
@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    link: Annotated[bool, typer.Option("--link/--copy", help="Hardlink into the store where "
                                       "the filesystem allows (sources must stay unchanged), "
                                       "else copy.")] = False,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    licence: Annotated[str | None, typer.Option(help="Licence of these files.")] = None,
    provenance: Annotated[str | None, typer.Option(help="Where these files came from.")] = None,
    no_fingerprint: Annotated[bool, typer.Option("--no-fingerprint",
                                                 help="Skip Chromaprint.")] = False,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest audio files into the store and the ledger; bad files are quarantined, never lost.

    Rerunning continues where a killed run stopped.

    Example: musicark ingest ~/rips --licence CC-BY-4.0
    """
    from musicark.ingest.pipeline import ingest as run_ingest

    arc = Archive.locate(archive)
    with Progress(TextColumn("[bold]ingesting"), BarColumn(), TextColumn("{task.completed:,} "
                  "files"), TextColumn("[dim]{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("", total=None)
        report = run_ingest(
            arc, paths, link=link, workers=workers, dask=dask, licence=licence,
            provenance=provenance, fingerprint=not no_fingerprint,
            progress=lambda n, r: bar.update(task, completed=n, description=r.path[-60:]),
        )
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    out.print(f"ingested {data['ingested']:,} files ({data['bytes'] / 1e6:,.1f} MB) in "
              f"{data['seconds']:.1f} s; {data['duplicates']:,} exact duplicates, "
              f"{data['unchanged']:,} unchanged since the last run, "
              f"{data['skipped_not_audio']:,} not audio")
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
def match(
    rematch: Annotated[bool, typer.Option(help="Recompute every automatic link.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write ambiguous and unmatched files "
                                                "to this JSON file for review.")] = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match ledger files to catalog tracks (ISRC, MBID, fuzzy tags, fingerprint).

    Run it again after a new catalog import. Example: musicark match --report review.json
    """
    from musicark.ingest.match import match_files

    result = match_files(Archive.locate(archive), rematch=rematch).as_dict()
    if report is not None:
        report.write_text(json.dumps({k: result[k] for k in ("ambiguous", "unmatched")},
                                     ensure_ascii=False, indent=2), encoding="utf-8")
    if as_json:
        print_json(result)
        return
    methods = ", ".join(f"{n:,} by {m}" for m, n in result["matched"].items()) or "none"
    out.print(f"matched {result['matched_files']:,} files ({methods}); "
              f"{len(result['ambiguous']):,} ambiguous, {len(result['unmatched']):,} unmatched")
    for item in result["ambiguous"][:10]:
        names = "; ".join(f"track:{c['track']} {c['name']} ({c['score']:.2f})"
                          for c in item["candidates"][:3])
        out.print(f"  ambiguous file {item['file']} {item['title']!r}: {names}", highlight=False)


@app.command()
@handle_errors
def ledger(
    status: Annotated[str | None, typer.Option(
        help="ok, quarantined, withdrawn or damaged.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows (1-10000).")] = 50,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List files in the ledger, with their status, reason and facts.

    Example: musicark ledger --status quarantined
    """
    from musicark.ingest.ledger import list_files

    rows = list_files(Archive.locate(archive, readonly=True), status=status, limit=limit)
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
