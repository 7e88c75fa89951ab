"""The `musicark` command line: parses arguments, makes one library call, renders the result.

Exit codes: 0 success, 1 unexpected error, 2 bad usage or query, 3 no archive, 4 archive
exists, 5 source exists, 6 unreadable source, 7 not in catalog, 8 bad config, 9 bad rows
with --strict, 10 another ingest is running, 130 interrupted (docs/cli.md lists them too).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from musicark import __version__
from musicark.archive import ENV_VAR, Archive
from musicark.errors import BadQuery, MusicarkError

app = typer.Typer(
    help="Build music preservation archives: catalog, plan, ingest, derive, release, verify.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Import, export and list catalog sources.", no_args_is_help=True)
synth_app = typer.Typer(help="Generate synthetic data for demos, tests and benchmarks.",
                        no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(synth_app, name="synth")

out = Console(soft_wrap=True)
err = Console(stderr=True)

ArchiveOpt = Annotated[Path | None, typer.Option(
    "--archive", "-a", envvar=ENV_VAR, show_envvar=True,
    help="Archive directory (default: $MUSICARK_ARCHIVE, else the current directory).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def handle_errors(func):
    """Turn library errors into one-line messages and documented exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MusicarkError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: nothing partial was kept")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug: one line for users, the traceback on request
            if os.environ.get("MUSICARK_DEBUG"):
                raise
            err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
                      "(run again with MUSICARK_DEBUG=1 for the traceback, and please report "
                      "it)", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def byte_progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
    )


def track_table(rows: list[dict], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for col, style in (("ref", "dim"), ("title", "bold"), ("artists", ""), ("album", ""),
                       ("year", "dim"), ("isrc", "dim"), ("pop", "cyan"), ("length", "dim")):
        table.add_column(col, style=style, overflow="fold",
                         no_wrap=col in ("ref", "year", "isrc", "pop", "length"),
                         justify="right" if col in ("pop", "length") else "left")
    for r in rows:
        length = r.get("duration_ms")
        table.add_row(
            f"track:{r['rowid']}", r.get("name") or "", r.get("artists") or "",
            r.get("album") or "", r.get("year") or "", r.get("isrc") or "",
            "" if r.get("popularity") is None else str(r["popularity"]),
            "" if length is None else f"{length // 60000}:{length // 1000 % 60:02d}",
        )
    return table


# -- archive -------------------------------------------------------------------------------
@app.command()
@handle_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Directory to create the archive in.")],
    name: Annotated[str | None, typer.Option(help="Human name of the archive.")] = None,
) -> None:
    """Create an archive: musicark.toml, catalog.sqlite (WAL) and store/.

    Example: musicark init ~/archive
    """
    archive = Archive.create(directory, name=name)
    out.print(f"created archive [bold]{archive.path}[/bold]")
    out.print(f"next: export {ENV_VAR}={archive.path}; musicark catalog import --help")


@app.command()
def version() -> None:
    """Print musicark's version."""
    out.print(__version__)


# -- catalog -------------------------------------------------------------------------------
def _mapping(mapping_file: Path | None, maps: list[str], list_sep: str | None,
             table_format: str | None) -> dict:
    mapping: dict[str, Any] = {}
    if mapping_file is not None:
        try:
            mapping = tomllib.loads(mapping_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BadQuery(f"cannot read mapping {mapping_file}: {exc}") from exc
    columns = dict(mapping.get("columns", {}))
    for item in maps:
        column, sep, field = item.partition("=")
        if not sep:
            raise BadQuery(f"--map wants COLUMN=FIELD, got {item!r}")
        columns[column] = field
    if columns:
        mapping["columns"] = columns
    if list_sep:
        mapping["list_separator"] = list_sep
    if table_format:
        mapping["format"] = table_format
    return mapping


@catalog_app.command("import")
@handle_errors
def catalog_import(
    src: Annotated[Path, typer.Argument(help="Dump file or directory (may be .gz/.bz2/.xz/.zst).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="api-json, musicbrainz, "
                                     "musicbrainz-json or table.")],
    archive: ArchiveOpt = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: file name).")] = None,
    licence: Annotated[str | None, typer.Option(help="Licence of the metadata.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace a source of the same name.")] = False,
    mapping: Annotated[Path | None, typer.Option(help="TOML column mapping (table).")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="COLUMN=FIELD (table; repeat).")]
    = None,
    list_sep: Annotated[str | None, typer.Option(help="List separator (table; default ;).")] = None,
    table_format: Annotated[str | None, typer.Option(help="csv, tsv, jsonl or parquet.")] = None,
    strict: Annotated[bool, typer.Option(help="Exit 9 if any row was bad.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a metadata dump into the catalog, atomically (a killed import leaves nothing).

    Example: musicark catalog import --format musicbrainz mbdump.tar.bz2
    """
    from musicark.catalog import import_source

    arc = Archive.locate(archive)
    with byte_progress(f"importing {src.name}") as bar:
        task = bar.add_task("import", total=None)
        report = import_source(
            arc, fmt, src, name=name, licence=licence, replace=replace,
            mapping=_mapping(mapping, map_ or [], list_sep, table_format),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    data = report.as_dict()
    if as_json:
        print_json(data)
    else:
        counts = ", ".join(f"{n:,} {k}" for k, n in data["counts"].items())
        out.print(f"imported [bold]{data['source']}[/bold]: {counts} in {data['seconds']:.1f} s")
        if data["duplicates"]:
            out.print(f"skipped {data['duplicates']:,} exact duplicates")
        if data["bad_rows"]:
            err.print(f"[yellow]{data['bad_rows']:,} bad rows[/yellow] (not imported):")
            for bad in data["bad_row_samples"][:20]:
                err.print(f"  line {bad['line']}: {bad['reason']}", highlight=False)
            if data["bad_rows"] > 20:
                err.print(f"  ... all in `musicark catalog sources --json` ({data['bad_rows']:,})")
    if strict and data["bad_rows"]:
        raise typer.Exit(9)


@catalog_app.command("export")
@handle_errors
def catalog_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="api-json, jsonl or parquet.")],
    output: Annotated[Path | None, typer.Option("--out", "-o", help="File (default: stdout).")]
    = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    archive: ArchiveOpt = None,
) -> None:
    """Export the catalog. api-json gives back api-json imports exactly (canonical JSON).

    Example: musicark catalog export --format parquet --out catalog.parquet
    """
    from musicark.catalog.export import export_catalog

    n = export_catalog(Archive.locate(archive, readonly=True), fmt, output, source=source)
    if output is not None:
        err.print(f"wrote {n:,} records to {output}")


@catalog_app.command("sources")
@handle_errors
def catalog_sources(archive: ArchiveOpt = None, as_json: JsonOpt = False) -> None:
    """List imported sources with their counts and bad-row reports.

    Example: musicark catalog sources --json
    """
    from musicark.catalog.sources import list_sources

    rows = list_sources(Archive.locate(archive, readonly=True))
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "kind", "status", "imported", "tracks", "albums", "artists",
                  "bad rows")
    for r in rows:
        counts = (r["report"] or {}).get("counts", {})
        table.add_row(str(r["id"]), r["name"], r["kind"], r["status"], r["imported_at"] or "",
                      *(f"{counts.get(k, 0):,}" for k in ("tracks", "albums", "artists")),
                      f"{(r['report'] or {}).get('bad_rows', 0):,}")
    out.print(table)


# -- search --------------------------------------------------------------------------------
@app.command()
@handle_errors
def search(
    query: Annotated[str, typer.Argument(help="Words to find in titles, artists and albums.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Results (1-1000).")] = 20,
    offset: Annotated[int, typer.Option(help="Skip this many results.")] = 0,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Full-text search over tracks: best match first, then the most popular.

    Example: musicark search "daft punk around"
    """
    from musicark.catalog import search as s

    rows = s.search(Archive.locate(archive, readonly=True), query, limit=limit, offset=offset)
    if as_json:
        print_json(rows)
    elif rows:
        out.print(track_table(rows))
    else:
        err.print("no matches")


@app.command()
@handle_errors
def show(
    ref: Annotated[str, typer.Argument(help="track:ROWID, album:ROWID, artist:ROWID, an ISRC, "
                                       "UPC, MBID or source id.")],
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show everything the catalog knows of a track, album or artist.

    Example: musicark show USUM71703861
    """
    from musicark.catalog import search as s

    info = s.show(Archive.locate(archive, readonly=True), ref)
    if as_json:
        print_json(info)
        return
    entity = info.pop("entity")
    nested = {k: info.pop(k) for k in ("tracks", "albums") if isinstance(info.get(k), list)}
    table = Table(title=f"{entity} {info.get('name') or ''}", title_justify="left",
                  show_header=False)
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    for key, value in info.items():
        if value is None or value == []:
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        table.add_row(key, str(value))
    out.print(table)
    if nested.get("tracks"):
        out.print(track_table(nested["tracks"], "tracks"))


@app.command()
@handle_errors
def lookup(
    identifiers: Annotated[list[str], typer.Argument(help="ISRCs, UPCs, MBIDs or source ids.")]
    = None,  # type: ignore[assignment]
    from_file: Annotated[Path | None, typer.Option("--file", help="One identifier per line "
                                                   "(- for stdin).")] = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Look up to 1,000 identifiers at once (kind detected from the shape of each).

    Example: musicark lookup GBAHS1400099 0094634177720 --json
    """
    from musicark.catalog import search as s

    idents = list(identifiers or [])
    if from_file is not None:
        text = sys.stdin.read() if str(from_file) == "-" else from_file.read_text("utf-8")
        idents += [line.strip() for line in text.splitlines() if line.strip()]
    if not idents:
        raise BadQuery("give identifiers as arguments or with --file")
    found = s.lookup(Archive.locate(archive, readonly=True), idents)
    if as_json:
        print_json(found)
        return
    table = Table("identifier", "kind", "matches")
    for ident, hits in found.items():
        names = [f"track:{r['rowid']} {r['name']}" for r in hits["tracks"]]
        names += [f"album:{r['rowid']} {r['name']}" for r in hits["albums"]]
        names += [f"artist:{r['rowid']} {r['name']}" for r in hits["artists"]]
        table.add_row(ident, s.identifier_kind(ident), "\n".join(names) or "[dim]none")
    out.print(table)


@app.command()
@handle_errors
def shuffle(
    n: Annotated[int, typer.Option("-n", help="How many tracks (1-1000).")] = 10,
    seed: Annotated[int | None, typer.Option(help="Seed for a repeatable draw.")] = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tracks drawn uniformly at random from the whole catalog (true shuffle).

    Example: musicark shuffle -n 5
    """
    from musicark.catalog import search as s

    rows = s.shuffle(Archive.locate(archive, readonly=True), n, seed=seed)
    if as_json:
        print_json(rows)
    else:
        out.print(track_table(rows))


@app.command()
@handle_errors
def stats(
    plots: Annotated[Path | None, typer.Option(help="Write PNG charts into this directory.")]
    = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Catalog statistics: popularity, listens by band, coverage, durations, genres, keys.

    Example: musicark stats --plots charts/
    """
    from musicark.catalog.stats import catalog_stats
    from musicark.clistats import render_stats

    data = catalog_stats(Archive.locate(archive, readonly=True))
    files = []
    if plots is not None:
        from musicark.catalog.plots import render

        files = render(data, plots)
    if as_json:
        print_json({**data, "plots": [str(f) for f in files]})
        return
    render_stats(out, data)
    for f in files:
        out.print(f"chart: {f}")


# -- ingest --------------------------------------------------------------------------------
@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    link: Annotated[bool, typer.Option("--link/--copy", help="Hardlink into the store where "
                                       "the filesystem allows (sources must stay unchanged), "
                                       "else copy.")] = False,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")]
    = None,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler address (tcp://host:8786) to "
                                             "fan out on instead.")] = None,
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
    status: Annotated[str | None, typer.Option(help="ok, quarantined or withdrawn.")] = None,
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


# -- synthetic data ------------------------------------------------------------------------
@synth_app.command("catalog")
@handle_errors
def synth_catalog(
    output: Annotated[Path, typer.Argument(help="File to write (.csv or .jsonl).")],
    tracks: Annotated[int, typer.Option(help="Number of tracks.")] = 100_000,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (CSV) or api-json.")]
    = "table",
    seed: Annotated[int, typer.Option(help="Same seed, same catalog.")] = 0,
) -> None:
    """Write a realistic synthetic catalog (reference-like popularity and listens).

    Example: musicark synth catalog --tracks 1000000 catalog.csv
    """
    from musicark.synth import write_catalog

    with Progress(TextColumn("[bold]synthesizing"), BarColumn(), TextColumn("{task.completed:,}"
                  " tracks"), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("synth", total=tracks)
        n = write_catalog(output, tracks, fmt, seed=seed,
                          progress=lambda done, total: bar.update(task, completed=done))
    err.print(f"wrote {n:,} tracks to {output}")


@synth_app.command("audio")
@handle_errors
def synth_audio(
    output: Annotated[Path, typer.Argument(help="Folder to write the audio files into.")],
    files: Annotated[int, typer.Option("--tracks", help="Number of audio files.")] = 40,
    seed: Annotated[int, typer.Option(help="The synthetic catalog's seed.")] = 0,
    catalog_tracks: Annotated[int, typer.Option(help="The synthetic catalog's size (its "
                                                "--tracks).")] = 100_000,
) -> None:
    """Render tagged audio (FLAC, MP3, Opus, M4A) for tracks of a synthetic catalog.

    Example: musicark synth audio --tracks 40 music/
    """
    from musicark.synth_audio import write_audio

    with Progress(TextColumn("[bold]rendering"), BarColumn(), TextColumn("{task.completed}"
                  " files"), console=err, transient=True) as bar:
        task = bar.add_task("audio", total=files)
        paths = write_audio(output, files, seed=seed, catalog_tracks=catalog_tracks,
                            progress=lambda done, total: bar.update(task, completed=done))
    err.print(f"wrote {len(paths)} audio files to {output}")


def main() -> None:
    app()
