"""Listens verbs: import listening data, rematch it after a catalog import, statistics."""

from __future__ import annotations

import csv
import os
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
from musicark.cli.progress import progress_bar, reporter
from musicark.errors import BadQuery

listens_app = typer.Typer(
    help="Listening data (scrobbles, streaming histories, radio logs) matched to tracks.",
    no_args_is_help=True)
app.add_typer(listens_app, name="listens")

FORMAT_HELP = ("listenbrainz, lastfm, librefm, maloja, panoscrobbler, spotify-history, "
               "spinitron, scrobbler-log or table.")


def _match(arc: Archive, *, retry: bool, relink: bool, workers: int | None,
           dask: str | None) -> dict:
    from musicark.listens.match import match_listens

    with progress_bar(unit="items") as bar:
        task = bar.add_task("matching", total=None, rate="")
        return match_listens(arc, retry=retry, relink=relink,
                             workers=workers or os.cpu_count() or 1, dask=dask,
                             progress=reporter(bar, task))


def _columns(maps: list[str]) -> dict[str, str]:
    columns = {}
    for item in maps:
        column, sep, field = item.partition("=")
        if not sep or not column or not field:
            raise BadQuery(f"--map wants COLUMN=FIELD, got {item!r}")
        if column in columns and columns[column] != field:
            raise BadQuery(f"--map maps column {column!r} twice ({columns[column]}, {field})")
        columns[column] = field
    return columns


def _match_line(match: dict) -> str:
    methods = ", ".join(f"{n:,} by {k}" for k, n in sorted(match["matched"].items())) or "none"
    return (f"matched {match['matched_items']:,} of {match['items']:,} new listened items "
            f"({methods}); in all {match['listens_matched']:,} of {match['listens_total']:,} "
            "listens are on catalog tracks")


@listens_app.command("import")
@handle_errors
def listens_import(
    src: Annotated[list[Path], typer.Argument(help="Files, or directories of them (a dump).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)],
    source: Annotated[str | None, typer.Option(help="Listens source name (default: the "
                                               "format). Duplicates are found per source.")]
    = None,
    user: Annotated[str, typer.Option(help="Whose listens, where the files do not say.")] = "",
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=FIELD (table; "
                                                   "fields: ts, artist, title, album, "
                                                   "duration_ms, mbid, isrc, ext_id, user).")]
    = None,
    rejects: Annotated[Path | None, typer.Option(help="Write every rejected row (file, line, "
                                                 "reason) to this TSV.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 9 if any row was rejected.")] = False,
    match: Annotated[bool, typer.Option(help="Match new listened items to tracks now "
                                        "(--no-match: later, with `listens rematch`).")]
    = True,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import listens, count them per track, source and month, and match them to tracks.

    A file imported before (same SHA-256) is skipped; a listen counted before counts once.

    Rejected rows are reported with their line and reason; the rest imports.

    Example: musicark listens import --format listenbrainz listens/2024/*.jsonl
    """
    from musicark.listens.formats import expand
    from musicark.listens.store import import_listens

    arc = Archive.locate(archive)
    files = expand(src, fmt)
    total = sum(p.stat().st_size for p in files if p.is_file())
    sink = None
    fh = None
    if rejects is not None:
        if any(p.resolve() == rejects.resolve() for p in files):
            # opening it for writing would empty an input before it is read
            raise BadQuery(f"--rejects {rejects} is one of the files to import")
        try:
            fh = rejects.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise BadQuery(f"--rejects {rejects}: cannot write: {exc.strerror}") from exc
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["file", "line", "reason"])
        sink = lambda path, rej: writer.writerow([str(path), rej.line, rej.reason])  # noqa: E731
    try:
        with progress_bar(bytes_=True) as bar:
            task = bar.add_task("importing listens", total=total)
            report = import_listens(arc, fmt, src, source=source, user=user,
                                    columns=_columns(map_ or []), on_reject=sink,
                                    progress=lambda n: bar.advance(task, n), match=False)
        if match:
            report["match"] = _match(arc, retry=False, relink=False, workers=workers,
                                     dask=dask)
    finally:
        if fh is not None:
            fh.close()
    if as_json:
        print_json(report)
    else:
        out.print(f"[bold]{safe_line(report['source'])}[/bold]: {report['listens']:,} new "
                  f"listens from {report['imported_files']:,} files "
                  f"({report['skipped_files']:,} already imported); "
                  f"{report['duplicates']:,} duplicates counted once, "
                  f"{report['rejected']:,} rows rejected")
        for path in report["invalid_files"]:
            err.print(f"[yellow]{safe_line(path)}: not one valid listen, nothing stored"
                      "[/yellow] (another --format?)", highlight=False, soft_wrap=True)
        if "match" in report:
            out.print(_match_line(report["match"]))
        else:
            out.print("not matched yet: run `musicark listens rematch`")
        shown = 0
        for file in report["files"]:
            for bad in file["rejects"]:
                if shown < 20:
                    err.print(f"  {safe_line(file['path'])}:{bad['line']}: "
                              f"{safe_line(bad['reason'])}",
                              highlight=False, soft_wrap=True)
                shown += 1
        if report["rejected"] > shown or shown > 20:
            where = (f" (every one in {safe_line(rejects)})" if rejects
                     else " (--rejects FILE lists every one)")
            err.print(f"  ... {report['rejected']:,} in all{where}")
    if strict and report["rejected"]:
        raise typer.Exit(9)


@listens_app.command("rematch")
@handle_errors
def listens_rematch(
    relink: Annotated[bool, typer.Option("--all", help="Recompute every link, not only the "
                                         "unmatched.")] = False,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match listened items again, e.g. after importing more of the catalog.

    Example: musicark listens rematch
    """
    report = _match(Archive.locate(archive), retry=True, relink=relink, workers=workers,
                    dask=dask)
    if as_json:
        print_json(report)
    else:
        out.print(_match_line(report))


@listens_app.command("forget")
@handle_errors
def listens_forget(
    source: Annotated[str, typer.Argument(help="The listens source to forget (see listens "
                                          "stats).", show_default=False)],
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forget a listens source: its counts and file records, so its files can be imported
    again (e.g. with the right --map). Plans made before keep their figures.

    Example: musicark listens forget lastfm-2019
    """
    from musicark.listens.forget import forget_source

    report = forget_source(Archive.locate(archive), source)
    if as_json:
        print_json(report)
    else:
        out.print(f"forgot listens source {safe_line(report['source'])}: "
                  f"{report['files']:,} files, {report['listens']:,} listens, "
                  f"{report['items']:,} listened items no other source has")


@listens_app.command("stats")
@handle_errors
def listens_stats(
    top: Annotated[int, typer.Option(min=1, max=10_000,
                                     help="How many top tracks, artists, unmatched.")] = 10,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Listens by source and month, top tracks and artists, matched and unmatched.

    Example: musicark listens stats --top 20
    """
    from musicark.listens.stats import listen_stats

    data = listen_stats(Archive.locate(archive, readonly=True), top=top)
    if as_json:
        print_json(data)
        return
    m = data["matched"]
    out.print(f"{m['listens_total']:,} listens, {m['listens_matched']:,} on catalog tracks "
              f"({m['tracks_with_listens']:,} tracks); {m['listened_items']:,} listened items, "
              f"{m['listened_items_matched']:,} matched")
    table = Table("source", "format", "files", "listens", "from", "to", title="sources",
                  title_justify="left")
    for s in data["sources"]:
        table.add_row(s["source"], s["format"], f"{s['files']:,}", f"{s['listens']:,}",
                      str(s["first_month"] or ""), str(s["last_month"] or ""))
    out.print(table)
    months = Table("month", "source", "listens", title="by month", title_justify="left")
    for row in data["months"][-24:]:
        months.add_row(row["month"], row["source"], f"{row['listens']:,}")
    out.print(months)
    for title, rows, name in (("top tracks", data["top_tracks"], "name"),
                              ("top artists", data["top_artists"], "name"),
                              ("top unmatched", data["unmatched_top"], "title")):
        if rows:
            t = Table("", "listens", title=title, title_justify="left")
            for r in rows:
                label = r[name] if name == "name" and "artists" not in r else \
                    f"{r.get('artists') or r.get('artist')} – {r[name]}"
                t.add_row(label, f"{r['listens']:,}")
            out.print(t)
