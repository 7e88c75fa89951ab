"""Fixity verbs: verify (store, releases, catalog, any BagIt bag) and repair.

Exit codes of both: 0 all good, 1 damage found (verify) or left unrepaired (repair), 2 the
check could not run (no archive, bad options, unreadable input).
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer

from musicark.archive import ENV_VAR
from musicark.cli.app import (
    ArchiveOpt,
    DaskOpt,
    JsonOpt,
    WorkersOpt,
    app,
    err,
    out,
    print_json,
    safe_line,
)
from musicark.cli.mirror import MAX_SNAPSHOT_DEFAULT, MaxSnapshotOpt, max_snapshot_bytes
from musicark.cli.progress import progress_bar
from musicark.errors import MusicarkError

SHOWN = 50  # problems printed before "... and N more"


def cannot_run_is_2(func):
    """Library errors mean the check could not run: exit 2 (not their usual codes), so
    scripts can tell "damage found" (1) from "did not check" (2)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MusicarkError as exc:
            err.print(f"[red]error:[/red] {safe_line(exc)}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: outcomes so far are recorded; run again "
                      "to continue")
            raise typer.Exit(130) from None
        except OSError as exc:
            err.print(f"[red]error:[/red] {safe_line(exc)}", highlight=False)
            raise typer.Exit(2) from None
        except sqlite3.DatabaseError as exc:
            err.print(f"[red]error:[/red] catalog.sqlite cannot be read ({safe_line(exc)}): "
                      "run `musicark verify catalog`, then "
                      "`musicark repair --catalog-from RELEASE`",
                      highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def _archive_path(archive: Path | None) -> Path:
    import os

    from musicark.config import CONFIG_NAME
    from musicark.errors import ArchiveNotFound

    path = Path(archive or os.environ.get(ENV_VAR) or Path.cwd()).expanduser().absolute()
    if not (path / CONFIG_NAME).is_file():
        raise ArchiveNotFound(f"no musicark archive at {path}")
    return path


def _render(report, as_json: bool) -> None:
    data = report.as_dict()
    if as_json:
        print_json(data)
    else:
        rate = f" ({data['gb_per_s']:.2f} GB/s)" if data["gb_per_s"] else ""
        verdict = "[green]no damage[/green]" if data["ok"] else \
            f"[red]{data['damage']:,} problems[/red]"
        out.print(f"{data['scope']}: {data['files']:,} files, {data['bytes'] / 1e9:,.3f} GB "
                  f"read in {data['seconds']:,.1f} s{rate}: {verdict}"
                  + (f", {data['warnings']:,} warnings" if data["warnings"] else ""))
        for shown, console in ((report.damaged, out), (
                [p for p in report.problems if not p.damage], err)):  # warnings: stderr
            for problem in shown[:SHOWN]:
                style = "dim" if not problem.damage else "red"
                console.print(f"  [{style}]{problem.kind}[/{style}] {safe_line(problem.path)}: "
                              f"{safe_line(problem.detail)}", highlight=False)
            if len(shown) > SHOWN:
                console.print(f"  ... and {len(shown) - SHOWN:,} more (--json lists all)")
        if notes_fetch := report.notes.get("fetch"):
            known = sum(f["length"] or 0 for f in notes_fetch)
            out.print(f"  incomplete: {len(notes_fetch):,} files to fetch ({known:,} bytes "
                      "known) as fetch.txt says; musicark does not download: fetch them, "
                      "then verify again")
        notes = report.notes
        if "decoded" in notes or "store.decoded" in notes:
            prefix = "" if "decoded" in notes else "store."
            audio, spent = notes[prefix + "audio_seconds"], notes[prefix + "decode_seconds"]
            speed = f", {audio / spent:,.0f}× real time per worker" if spent else ""
            out.print(f"  decoded {notes[prefix + 'decoded']:,} audio files "
                      f"({audio / 3600:,.2f} h of audio{speed}): "
                      f"{notes[prefix + 'undecodable']:,} undecodable")
        for key in ("skipped", "stopped_by", "store.stopped_by"):
            if report.notes.get(key):
                out.print(f"  note: {key}: {safe_line(report.notes[key])}", highlight=False)
    raise typer.Exit(report.exit_code)


@app.command()
@cannot_run_is_2
def verify(
    what: Annotated[str, typer.Argument(help="store, releases, catalog or all.")] = "all",
    bag: Annotated[Path | None, typer.Option(
        exists=True, file_okay=False,
        help="Validate this BagIt bag (any bag, no archive needed) instead.")] = None,
    torrent: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="With --bag: also check every file against this .torrent (v1 pieces, v2 "
             "roots).")] = None,
    older_than: Annotated[str | None, typer.Option(
        help="Store: only files not verified for this long, e.g. 90d.")] = None,
    sample: Annotated[str | None, typer.Option(
        help="Store: this share of the files per run, longest unverified first, e.g. 2%.")
    ] = None,
    max_bytes: Annotated[str | None, typer.Option(
        help="Store: stop after reading this much, e.g. 1TB (the next run continues).")
    ] = None,
    max_time: Annotated[str | None, typer.Option(
        help="Store: stop after this long, e.g. 2h (the next run continues).")] = None,
    decode: Annotated[bool, typer.Option(
        "--decode", help="Store: also decode every audio file to its end (the slow speed; "
        "its own rotation, oldest decode check first).")] = False,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check fixity: store files against their SHA-256 and size, release shards as BagIt
    bags and against their torrents, the catalog's integrity; or any BagIt bag (--bag) to
    the letter of RFC 8493. Exit 0 all good (warnings go to stderr), 1 damage, undecodable
    audio, or a bag invalid or incomplete (files fetch.txt names, not fetched: musicark
    downloads nothing), 2 could not run.

    Two speeds for the store. The default reads every byte once and checks its SHA-256 (at
    the speed of the disk): it proves the bytes are the ones ingested. --decode also decodes
    every audio frame, as `ingest --decode-check` does, many times slower: it finds audio
    that was broken when it came in (ingest checks structure by default), reported as
    "undecodable" with the decoder's reason; such a file keeps its status (its bytes are
    intact, nothing can repair it). Both are scrubs: budgets per run, killed runs resume.

    Example: musicark verify store --older-than 90d --max-time 2h

    Example: musicark verify store --decode --sample 1% --max-time 6h
    """
    from musicark.verify.report import parse_bytes, parse_duration, parse_fraction
    from musicark.verify.store import ScrubOptions

    if bag is not None and decode:
        from musicark.errors import BadQuery

        raise BadQuery("--decode decodes the store's audio: it does not apply to --bag")
    if bag is not None:
        from musicark.verify.shard import validate_bag
        from musicark.verify.torrent import BadTorrent, load_expectations

        try:
            expected = load_expectations(torrent.read_bytes()) if torrent else None
        except BadTorrent as exc:
            raise BadTorrent(f"{torrent}: not a torrent libtorrent can load ({exc})") from None
        total = sum(p.stat().st_size for p in bag.rglob("*") if p.is_file())
        with progress_bar(bytes_=True) as bar:
            task = bar.add_task("verifying bag", total=total)
            report = validate_bag(bag, expected, workers=workers, dask=dask,
                                  progress=lambda n: bar.advance(task, n))
        _render(report, as_json)
    options = ScrubOptions(
        older_than=parse_duration(older_than) if older_than else None,
        sample=parse_fraction(sample) if sample else None,
        max_bytes=parse_bytes(max_bytes) if max_bytes else None,
        max_time=parse_duration(max_time) if max_time else None,
        decode=decode)
    from musicark.verify.run import run_verify

    with progress_bar(bytes_=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"verifying {stage}", total=total)
            bar.update(tasks[stage], completed=done, total=total,
                       description=f"verifying {stage}")

        report = run_verify(_archive_path(archive), what, options, workers=workers, dask=dask,
                            progress=progress)
    _render(report, as_json)


@app.command()
@cannot_run_is_2
def repair(
    from_: Annotated[list[Path] | None, typer.Option(
        "--from", exists=True, file_okay=False, help="Where good copies may be: another "
        "archive, a release directory, a shard, any folder; repeatable.")] = None,
    catalog_from: Annotated[str | None, typer.Option(
        help="Rebuild catalog.sqlite from this release's metadata snapshot (a release name "
             "or directory) when SQLite cannot recover it.")] = None,
    max_snapshot_size: MaxSnapshotOpt = MAX_SNAPSHOT_DEFAULT,
    purge_damaged: Annotated[bool, typer.Option(
        help="Delete the damaged bytes earlier repairs moved to store/damaged/.")] = False,
    releases: Annotated[bool, typer.Option(
        help="Also repair release files (torrents, tag files, torrents.json).")] = True,
    workers: WorkersOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put good bytes back for every damaged or missing file that verify flagged: from
    the archive's own release copies that are not the damaged inode, from --from copies,
    or rebuilt from the archive's own files (restore patches, tags, Opus); every candidate
    must hash to the recorded SHA-256.
    Damaged bytes go to store/damaged/. Exit 0 all repaired, 1 some left, 2 could not run.

    Example: musicark verify store; musicark repair --from /mnt/mirror
    """
    from musicark.archive import Archive
    from musicark.verify.repair import repair as run_repair

    path = _archive_path(archive)
    catalog = None
    if catalog_from:
        from musicark.verify.catalog_restore import restore_catalog

        catalog = restore_catalog(path, catalog_from,
                                  max_snapshot_size=max_snapshot_bytes(max_snapshot_size))
    with progress_bar(bytes_=True) as bar:
        task = bar.add_task("repairing", total=None)
        with Archive.open(path) as opened:
            report = run_repair(opened, from_ or [], releases=releases, purge=purge_damaged,
                                workers=workers,
                                progress=lambda d, t: bar.update(task, completed=d, total=t))
    report.catalog = catalog
    data = report.as_dict()
    if as_json:
        print_json(data)
        raise typer.Exit(report.exit_code)
    if catalog:
        out.print(f"catalog rebuilt from {safe_line(catalog['snapshot'])}; the damaged one is in "
                  f"{catalog['damaged_catalog_moved_to']}")
        for line in catalog["lacks"]:
            out.print(f"  the snapshot lacks {safe_line(line)}", highlight=False)
    for item in data["repaired"]:
        if item["how"] != "already good":
            out.print(f"repaired sha256:{item['sha256']}: {safe_line(item['how'])}",
                      highlight=False)
    for item in data["release_files"]:
        out.print(f"repaired {safe_line(item['path'])} from {safe_line(item['from'])}",
                  highlight=False)
    if data["relinked"]:
        out.print(f"{len(data['relinked']):,} release copies linked to the repaired files")
    for item in data["unrepaired"]:
        out.print(f"[red]not repaired[/red] sha256:{item['sha256']}: {safe_line(item['reason'])}",
                  highlight=False)
        for t in item["torrents"]:
            out.print(f"  fetch {safe_line(t['path'])} from {t['magnet']} "
                      f"(release {safe_line(t['release'])})",
                      highlight=False)
    for item in data["release_unrepaired"]:
        out.print(f"[red]not repaired[/red] {safe_line(item['path'])}: "
                  f"{safe_line(item['reason'])}", highlight=False)
    if data["purged"]:
        out.print(f"purged {data['purged']:,} damaged files from store/damaged/")
    if not (data["repaired"] or data["release_files"] or data["unrepaired"]
            or data["release_unrepaired"]):
        out.print("nothing to repair (run `musicark verify` first to find damage)")
    raise typer.Exit(report.exit_code)
