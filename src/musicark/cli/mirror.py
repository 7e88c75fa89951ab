"""`musicark mirror`: turn a release fetched with any BitTorrent client into an archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    JsonOpt,
    Table,
    WorkersOpt,
    app,
    err,
    handle_errors,
    out,
    print_json,
)
from musicark.cli.progress import progress_bar
from musicark.errors import ArchiveNotFound
from musicark.units import human_bytes

MaxSnapshotOpt = Annotated[str, typer.Option(
    "--max-snapshot-size", help="Refuse a catalog snapshot that inflates past this size "
    "(e.g. 100GB); it also stops at the size the snapshot declares and at 1000x its "
    "compressed size.")]
MAX_SNAPSHOT_DEFAULT = "100GB"


def max_snapshot_bytes(text: str) -> int:
    from musicark.verify.report import parse_bytes

    return parse_bytes(text)


mirror_app = typer.Typer(
    help="Mirror a release fetched with any BitTorrent client: import, then status.",
    no_args_is_help=True)
app.add_typer(mirror_app, name="mirror")


def _open_or_create(path: Path | None, dirs: list[Path]) -> Archive:
    """The archive; a new one, named as the publisher's, when --archive names a directory
    that is not one yet."""
    try:
        return Archive.locate(path)
    except ArchiveNotFound:
        if path is None:
            raise
        from musicark.mirror.locate import find_shards, publisher_name

        return Archive.create(path, name=publisher_name(find_shards(dirs)[0]))


@mirror_app.command("import")
@handle_errors
def mirror_import(
    dirs: Annotated[list[Path], typer.Argument(
        help="Release directories, their shards/ folders, or single shard directories.")],
    copy: Annotated[bool, typer.Option(
        "--copy", help="Copy payload files into the store instead of hardlinking them.")
    ] = False,
    restore_originals: Annotated[bool, typer.Option(
        "--restore-originals", help="Rebuild the untagged originals from the restore "
        "patches, check their SHA-256 and store them too.")] = False,
    recheck: Annotated[bool, typer.Option(
        "--recheck", help="Check shards imported before again, even if unchanged.")] = False,
    max_snapshot_size: MaxSnapshotOpt = MAX_SNAPSHOT_DEFAULT,
    archive: ArchiveOpt = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify fetched shards (bag and torrent) and import the verified ones.

    The catalog comes from the release's metadata snapshot (merged by source and id), or a
    minimal one from files.jsonl without it. Damaged and incomplete shards are reported
    and skipped: run it again as more shards finish. Exit code 1 when a shard was skipped.
    With --archive DIR naming no archive yet, one is created there, with the
    publisher's archive name (its own releases then name shards as the publisher did).
    Example: musicark mirror import ~/Downloads/musicark-2026-11 -a ~/mirror
    """
    from musicark.mirror import import_mirror

    arc = _open_or_create(archive, dirs)
    with progress_bar(bytes_=True) as bar:
        task = bar.add_task("checking", total=None)

        def step(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)

        report = import_mirror(arc, dirs, copy=copy, restore_originals=restore_originals,
                               recheck=recheck, workers=workers, progress=step,
                               max_snapshot_size=max_snapshot_bytes(max_snapshot_size))
    result = report.as_dict()
    if as_json:
        print_json(result)
        raise typer.Exit(report.exit_code)
    for name, info in result["releases"].items():
        for line in info.get("problems") or []:
            err.print(f"release {name}: {line}", highlight=False, markup=False)
        if "catalog" not in info:
            continue
        merged = info.get("merged")
        gained = (", ".join(f"{n:,} {t}" for t, n in merged.items() if n) or "nothing new"
                  ) if merged is not None else "unchanged"
        source = ("metadata snapshot" if info["catalog"] == "snapshot"
                  else "files.jsonl (minimal)")
        out.print(f"release {name}: catalog from the {source}"
                  + (f" ({gained})" if info["catalog"] == "snapshot" else ""), highlight=False)
    table = Table("shard", "state", "files", "bytes", "stored", title=None)
    for s in result["shards"]:
        files = f"{s['files_good']:,}/{s['files_total']:,}" if s["files_total"] else ""
        size = (f"{human_bytes(s['bytes_good'])}/{human_bytes(s['bytes_total'])} "
                f"({s['percent']:.0f} %)") if s["bytes_total"] else ""
        stored = (f"{s['registered']:,} ({s['new_files']:,} new, {s['linked']:,} linked, "
                  f"{s['copied']:,} copied)") if s["registered"] else ""
        table.add_row(s["name"], s["state"], files, size, stored)
    out.print(table)
    counts = result["counts"]
    out.print(", ".join(f"{n:,} {state}" for state, n in counts.items() if n) or "no shards")
    for s in result["shards"]:
        for line in s["problems"][:3]:
            err.print(f"  {s['name']}: {line}", highlight=False, markup=False)
    raise typer.Exit(report.exit_code)


@mirror_app.command("status")
@handle_errors
def mirror_status_cmd(
    max_tb: Annotated[float | None, typer.Option(
        help="Space for more shards, in TB: the fetch plan fills it (default: every missing "
             "shard, best first).")] = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per release and shard: verified, incomplete, damaged, present, missing; listens
    covered; what to fetch next for the most listens per TB.

    Example: musicark mirror status --max-tb 1
    """
    from musicark.mirror import mirror_status

    result = mirror_status(Archive.locate(archive),
                           max_bytes=max_tb * 1e12 if max_tb else None)
    if as_json:
        print_json(result)
        return
    for release in result["releases"]:
        share = release["listens_share"]
        out.print(f"release {release['name']} ({release['catalog']} catalog): "
                  + ", ".join(f"{n:,} {s}" for s, n in sorted(release["counts"].items()))
                  + f"; listens covered {release['listens_covered']:,.0f} of "
                    f"{release['listens_total']:,.0f}"
                  + (f" ({100 * share:.1f} %)" if share is not None else ""), highlight=False)
        table = Table("shard", "state", "done", "size", "listens")
        for s in release["shards"]:
            table.add_row(s["name"], s["state"],
                          f"{s['percent']:.0f} %" if s["percent"] is not None else "",
                          human_bytes(s["data_size"]) if s["data_size"] else "",
                          f"{s['listens_covered']:,.0f}" if s["listens_covered"] is not None
                          else "")
        out.print(table)
    fetch = result["fetch"]
    if fetch and fetch["picks"]:
        out.print(f"fetch next ({human_bytes(fetch['bytes'])}, "
                  f"{fetch['listens_covered']:,.0f} listens):")
        for pick in fetch["picks"]:
            out.print(f"  {pick['name']}  {pick['magnet']}", highlight=False, markup=False)
