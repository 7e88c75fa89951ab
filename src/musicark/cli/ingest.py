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
    err,
    handle_errors,
    out,
    print_json,
    safe_line,
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
    analyse: Annotated[bool, typer.Option(
        "--analyse", help="Then measure loudness, ReplayGain and quality flags of the files "
        "stored (a second decode; `musicark analyse` does it later).")] = False,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest audio files into the store and the ledger; bad files are quarantined, never lost.

    Every file with a sign of audio (magic bytes, container or extension) is stored, as ok
    or quarantined with the reason; files with no sign are skipped as not audio and listed
    by `musicark ledger --skipped`. Devices, FIFOs and sockets are never read (quarantined by
    path). Every path that could not be walked or read (a folder that cannot be listed, an
    unreadable, vanished or special file) is named on stderr and kept for `musicark ledger
    --skipped`; the exit code is then 9. The archive's own folder is never ingested.
    Rerunning continues where a killed or interrupted run stopped.

    Example: musicark ingest ~/rips --licence CC-BY-4.0
    """
    from musicark.ingest.pipeline import ingest as run_ingest

    arc = Archive.locate(archive)
    with progress_bar(unit="files") as bar:
        task = bar.add_task("scanning", total=None, rate="")
        advance = reporter(bar, task)

        stored: list[str] = []

        def step(n: int, result) -> None:
            advance(n, bar.tasks[0].total)
            if analyse and result.status == "ok" and result.sha256:
                stored.append(result.sha256)

        report = run_ingest(
            arc, paths, link=link, workers=workers, dask=dask, licence=licence,
            provenance=provenance, fingerprint=not no_fingerprint, decode_check=decode_check,
            progress=step,
            counted=lambda total: bar.update(task, total=total, description="ingesting"),
            phase=lambda name: phase(bar, task, name),
        )
        if analyse:
            from musicark.analyse.run import analyse_digests

            phase(bar, task, "analysing")
            analysed = analyse_digests(arc, stored, workers=workers, dask=dask,
                                       progress=advance)
    data = report.as_dict()
    if analyse:
        data["analysis"] = analysed
    if as_json:
        print_json(data)
        raise typer.Exit(report.exit_code)
    out.print(f"ingested {data['ingested']:,} files ({data['bytes'] / 1e6:,.1f} MB) in "
              f"{data['seconds']:.1f} s; {data['duplicates']:,} exact duplicates, "
              f"{data['unchanged']:,} unchanged since the last run, "
              f"{data['skipped_not_audio']:,} not audio"
              + (f", {data['not_walked_or_read']:,} not walked or read"
                 if data["not_walked_or_read"] else ""))
    if data["archive_folder_not_ingested"]:
        out.print(f"the archive's own folder {safe_line(data['archive_folder_not_ingested'])} "
                  "was not ingested", highlight=False)
    if data["symlinked_folders_not_followed"]:
        out.print(f"{data['symlinked_folders_not_followed']:,} symlinked folders not followed")
    if data["skipped_not_audio"] or data["symlinked_folders_not_followed"]:
        out.print("see the paths not stored with: musicark ledger --skipped")
    out.print(f"matched {data['matched_to_catalog']:,} files to catalog tracks; "
              f"{data['near_duplicates']:,} sound like a file already held")
    if data["quarantined"]:
        table = Table("quarantined because", "files", title="quarantine", title_justify="left")
        for reason, n in data["quarantined_by_reason"].items():
            table.add_row(reason, f"{n:,}")
        out.print(table)
        out.print("see them with: musicark ledger --status quarantined")
    if analyse:
        from musicark.cli.analyse import render

        render(analysed, as_json=False)
    if report.not_walked:
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in report.not_walked.most_common())
        err.print(f"[yellow]{data['not_walked_or_read']:,} paths not walked or read[/yellow] "
                  f"({kinds}):", highlight=False)
        for line in report.samples:
            err.print(f"  {safe_line(line)}", highlight=False)
        more = data["not_walked_or_read"] - len(report.samples)
        err.print(f"  {'... ' + format(more, ',') + ' more; ' if more else ''}all of them: "
                  f"musicark ledger --skipped", highlight=False)
        raise typer.Exit(report.exit_code)


@app.command()
@handle_errors
def ledger(
    status: Annotated[str | None, typer.Option(
        help="ok, quarantined, withdrawn, damaged or absent (known, not held).")] = None,
    skipped: Annotated[bool, typer.Option("--skipped", help="List the paths ingest did not "
                                          "store, with the reason: those the latest run (or "
                                          "--run N) could not walk or read or left out, "
                                          "then those with no sign of audio.")] = False,
    run: Annotated[int | None, typer.Option("--run", help="With --skipped: this ingest "
                                            "run's paths (see --runs).")] = None,
    runs: Annotated[bool, typer.Option("--runs", help="List ingest runs, latest first, "
                                       "with how many paths each did not walk or read.")
                    ] = False,
    flag: Annotated[str | None, typer.Option(
        help="List the files an analysis flagged, worst first: clipping, leading-silence, "
        "trailing-silence, silence-gaps, dc-offset, mono-as-stereo, fake-lossless, or "
        "failed (could not be analysed).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows (1-10000).")] = 50,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List files in the ledger, with their status, reason and facts; with --skipped, the
    paths ingest did not store (not walked, not read, or nothing in them looked like audio);
    with --runs, the ingest runs; with --flag, the files `musicark analyse` flagged.

    Example: musicark ledger --status quarantined
    """
    from musicark.ingest.ledger import list_files, list_runs, list_skipped

    arc = Archive.locate(archive, readonly=True)
    if flag is not None:
        if status is not None or skipped or runs:
            raise BadQuery("--flag lists analysed files: drop --status, --skipped and --runs")
        _flagged(arc, flag, limit, as_json)
        return
    if (skipped or runs) and status is not None:
        raise BadQuery("--skipped and --runs list paths and runs, not files: drop --status")
    if run is not None and not skipped:
        raise BadQuery("--run goes with --skipped")
    if runs:
        _print_runs(list_runs(arc, limit=limit), as_json)
        return
    if skipped:
        rows = list_skipped(arc, run=run, limit=limit)
        if as_json:
            print_json(rows)
            return
        table = Table("size", "kind", title="skipped: not stored", title_justify="left")
        table.add_column("path", overflow="fold", ratio=3)
        table.add_column("reason", overflow="fold", ratio=2)
        for r in rows:
            size = "" if r["size"] is None else f"{r['size'] / 1e6:.1f} MB"
            table.add_row(size, r["kind"], r["path"], r["reason"])
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


def _print_runs(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    table = Table("run", "started", "outcome", "not walked or read",
                  title="ingest runs", title_justify="left")
    table.add_column("paths", overflow="fold")
    for r in rows:
        table.add_row(str(r["run"]), r["started_at"], r["outcome"] or "(running or killed)",
                      f"{r['not_walked_or_read']:,}", ", ".join(r["paths"]))
    out.print(table)


def _flagged(arc: Archive, flag: str, limit: int, as_json: bool) -> None:
    from musicark.analyse.record import flagged_files

    rows = flagged_files(arc.conn, flag, limit)
    if as_json:
        print_json(rows)
        return
    table = Table("file", "codec", "value", title=f"flag: {flag}", title_justify="left")
    table.add_column("path", overflow="fold", ratio=3)
    if flag in ("fake-lossless", "failed"):
        table.add_column("confidence" if flag == "fake-lossless" else "reason", overflow="fold")
    for r in rows:
        extra = [] if flag not in ("fake-lossless", "failed") else \
            [str(r.get("confidence") if flag == "fake-lossless" else r.get("reason") or "")]
        table.add_row(str(r["rowid"]), r["codec"] or "",
                      "" if r["value"] is None else f"{r['value']:g}", r["path"] or "", *extra)
    out.print(table)
