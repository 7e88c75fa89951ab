"""Archive, catalog and search verbs."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from musicark import __version__
from musicark.archive import ENV_VAR, Archive
from musicark.cli.app import (
    ArchiveOpt,
    JsonOpt,
    Table,
    app,
    catalog_app,
    err,
    handle_errors,
    out,
    print_json,
    safe_line,
    track_table,
)
from musicark.cli.progress import phase, progress_bar
from musicark.errors import BadQuery


# -- archive -------------------------------------------------------------------------------
@app.command()
@handle_errors
def init(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(
        help="Directory to create the archive in (or give --archive).", show_default=False)
    ] = None,
    archive_dir: ArchiveOpt = None,
    name: Annotated[str | None, typer.Option(help="Human name of the archive.")] = None,
) -> None:
    """Create an archive: musicark.toml, catalog.sqlite (WAL) and store/.

    Example: musicark init ~/archive
    """
    source = ctx.get_parameter_source("archive_dir")
    given = source is not None and source.name == "COMMANDLINE"  # not $MUSICARK_ARCHIVE
    if directory is not None and archive_dir is not None and given and (
            directory.resolve() != archive_dir.resolve()):
        # two different places on one command line: neither wins silently
        raise BadQuery(f"two places given: {directory} and --archive {archive_dir}; "
                       "give one")
    target = directory or archive_dir
    if target is None:
        raise BadQuery("say where to create the archive: musicark init DIRECTORY")
    archive = Archive.create(target, name=name)
    out.print(f"created archive [bold]{safe_line(archive.path)}[/bold]")
    out.print(f"next: export {ENV_VAR}={safe_line(archive.path)}; musicark catalog import --help")


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
    src: Annotated[Path, typer.Argument(help="Dump file or directory (may be .gz/.bz2/.xz/.zst), "
                                        "or - for standard input (with --name).")],
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
    with progress_bar(bytes_=True) as bar:
        task = bar.add_task(f"importing {src.name}", total=None)
        report = import_source(
            arc, fmt, src, name=name, licence=licence, replace=replace,
            mapping=_mapping(mapping, map_ or [], list_sep, table_format),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            phase=lambda name: phase(bar, task, name),
        )
    data = report.as_dict()
    if as_json:
        print_json(data)
    else:
        counts = ", ".join(f"{n:,} {k}" for k, n in data["counts"].items())
        out.print(f"imported [bold]{safe_line(data['source'])}[/bold]: {counts} in "
                  f"{data['seconds']:.1f} s")
        if data["duplicates"]:
            out.print(f"skipped {data['duplicates']:,} exact duplicates")
        if data["unmapped_columns"]:
            err.print("columns mapped to no field (kept in each track's extra JSON): "
                      + ", ".join(data["unmapped_columns"]), highlight=False)
        if data["bad_rows"]:
            err.print(f"[yellow]{data['bad_rows']:,} bad rows[/yellow] (not imported):")
            for bad in data["bad_row_samples"][:20]:
                err.print(f"  line {bad['line']}: {safe_line(bad['reason'])}", highlight=False)
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
    if info.get("loudness"):
        from musicark.cli.analyse import loudness_rows

        info.update(loudness_rows(info.pop("loudness")))
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


def _read_identifiers(path: Path) -> str:
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise BadQuery(f"--file {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadQuery(f"--file {path}: not UTF-8 text (byte {exc.start})") from exc


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
        text = _read_identifiers(from_file)
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
        table.add_row(ident, s.identifier_kind(ident),
                      "\n".join(names) or Text("none", style="dim"))
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
    from musicark.cli.stats import render_loudness, render_observed, render_stats

    data = catalog_stats(Archive.locate(archive, readonly=True))
    files = []
    if plots is not None:
        from musicark.catalog.plots import render

        files = render(data, plots)
    if as_json:
        print_json({**data, "plots": [str(f) for f in files]})
        return
    render_stats(out, data)
    render_observed(out, data["observed_listens"])
    render_loudness(out, data["loudness"])
    for f in files:
        out.print(f"chart: {safe_line(f)}")
