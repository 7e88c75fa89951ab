"""`musicark match`: link files to tracks, and review, accept or reject what it did."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    JsonOpt,
    Table,
    app,
    handle_errors,
    out,
    print_json,
    safe_line,
)
from musicark.errors import BadQuery

match_app = typer.Typer(
    help="Match ledger files to catalog tracks (ISRC, MBID, fuzzy tags, fingerprint); "
         "review, accept or reject the matches.", invoke_without_command=True)
app.add_typer(match_app, name="match")


@match_app.callback()
@handle_errors
def match(
    ctx: typer.Context,
    rematch: Annotated[bool, typer.Option(help="Recompute every automatic link (manual "
                                          "decisions stay).")] = False,
    report: Annotated[Path | None, typer.Option(help="Write ambiguous and unmatched files "
                                                "to this JSON file for review.")] = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match ledger files to catalog tracks (ISRC, MBID, fuzzy tags, fingerprint).

    Run it again after a new catalog import; `match review` shows what it doubted.
    Example: musicark match --report review.json
    """
    if ctx.invoked_subcommand is not None:
        return
    from musicark.ingest.match import match_files

    if report is not None and (report.is_dir() or not report.parent.is_dir()):
        # refused before matching, so that no run's review list is lost
        raise BadQuery(f"--report {report}: not a file in an existing folder")
    located = Archive.locate(archive)
    if report is not None and located.owns(report):
        raise BadQuery(f"--report {report}: that is one of the archive's own files; "
                       "write the report elsewhere")
    result = match_files(located, rematch=rematch).as_dict()
    if report is not None:
        _write_report(report, {k: result[k] for k in ("ambiguous", "unmatched")})
    if as_json:
        print_json(result)
        return
    methods = ", ".join(f"{n:,} by {m}" for m, n in result["matched"].items()) or "none"
    out.print(f"matched {result['matched_files']:,} files ({methods}); "
              f"{len(result['ambiguous']):,} ambiguous, {len(result['unmatched']):,} unmatched")
    for item in result["ambiguous"][:10]:
        names = "; ".join(f"track:{c['track']} {safe_line(c['name'])} ({c['score']:.2f})"
                          for c in item["candidates"][:3])
        out.print(f"  ambiguous file {item['file']} {safe_line(repr(item['title']))}: {names}",
                  highlight=False)
    if result["ambiguous"] or result["unmatched"]:
        out.print("review them with: musicark match review")


def _write_report(path: Path, data: dict) -> None:
    """Whole or not at all: a temporary file renamed over `path`."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise BadQuery(f"--report {path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


@match_app.command("review")
@handle_errors
def match_review(
    limit: Annotated[int, typer.Option("--limit", "-n", help="Files per group (1-10000).")
                     ] = 50,
    below: Annotated[float, typer.Option(help="Show automatic links scoring below this.")
                     ] = 0.9,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Low-confidence and ambiguous matches, and unmatched files: each with its candidates,
    their scores and why it is shown. Decide with `match accept` or `match reject`.

    Example: musicark match review --below 0.95
    """
    from musicark.ingest.review import review

    found = review(Archive.locate(archive, readonly=True), limit=limit, below=below)
    if as_json:
        print_json(found)
        return
    shown = 0
    for group, title in (("low_confidence", "low-confidence links"),
                         ("unmatched", "unmatched and ambiguous files")):
        if not found[group]:
            continue
        table = Table("file", "tags", "why", "candidates (score)", title=title,
                      title_justify="left", show_lines=True)
        for item in found[group]:
            tags = " / ".join(str(x) for x in (item["title"], ", ".join(item["artists"] or []),
                                               item["album"]) if x)
            cands = "\n".join(f"{c['track']} {c['name']} — {c['artists'] or '?'} "
                              f"({c['score']:.2f}){' [linked]' if c['linked'] else ''}"
                              for c in item["candidates"]) or "none"
            table.add_row(f"file:{item['file']}\n{item['path'] or ''}", tags or "(no tags)",
                          item["why"], cands)
            shown += 1
        out.print(table)
    if not shown:
        out.print("nothing to review: every match is confident or decided")
    else:
        out.print("decide: musicark match accept FILE TRACK | musicark match reject FILE")


@match_app.command("accept")
@handle_errors
def match_accept(
    file: Annotated[str, typer.Argument(help="file:N, a SHA-256 or its first 8+ hex digits.")],
    track: Annotated[str, typer.Argument(help="track:N, or an ISRC, MBID or source id.")],
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Link FILE to TRACK by hand (method "manual": later automatic runs never change it).

    Example: musicark match accept file:12 track:4711
    """
    from musicark.ingest.review import accept

    result = accept(Archive.locate(archive), file, track)
    if as_json:
        print_json(result)
        return
    out.print(f"file:{result['file']} is track:{result['track']} (manual)")


@match_app.command("reject")
@handle_errors
def match_reject(
    file: Annotated[str, typer.Argument(help="file:N, a SHA-256 or its first 8+ hex digits.")],
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Unlink FILE from every track; automatic matching leaves it alone from now on.

    Example: musicark match reject file:12
    """
    from musicark.ingest.review import reject

    result = reject(Archive.locate(archive), file)
    if as_json:
        print_json(result)
        return
    unlinked = ", ".join(f"track:{t}" for t in result["unlinked_tracks"]) or "no track"
    out.print(f"file:{result['file']} rejected (unlinked from {unlinked})")
