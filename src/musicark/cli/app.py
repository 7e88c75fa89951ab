"""Shared pieces of the command line: the Typer apps, options, error handling, rendering.

Each verb parses arguments, makes one library call and renders the result; library errors
become one-line messages and the exit codes listed in `musicark.cli`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from musicark.archive import ENV_VAR
from musicark.errors import Interrupted, MusicarkError, user_error

app = typer.Typer(
    help="Build music preservation archives: catalog, plan, ingest, derive, release, verify.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Import, export and list catalog sources.", no_args_is_help=True)
synth_app = typer.Typer(help="Generate synthetic data for demos, tests and benchmarks.",
                        no_args_is_help=True)


def _print_version(value: bool) -> None:
    if value:
        from musicark import __version__

        sys.stdout.write(f"musicark {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Build music preservation archives: catalog, plan, ingest, derive, release, verify."""


app.add_typer(catalog_app, name="catalog")
app.add_typer(synth_app, name="synth")



def _console(*, stderr: bool) -> Console:
    """Lines are never wrapped mid-sentence; off a terminal (pipes, logs, CI) tables get
    room instead of Rich's 80 columns, unless COLUMNS says otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, soft_wrap=True, width=width)


out = _console(stderr=False)
err = _console(stderr=True)

ArchiveOpt = Annotated[Path | None, typer.Option(
    "--archive", "-a", envvar=ENV_VAR, show_envvar=True,
    help="Archive directory (default: $MUSICARK_ARCHIVE, else the current directory).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WorkersOpt = Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")]
DaskOpt = Annotated[str | None, typer.Option(
    help="Dask scheduler address (tcp://host:8786) to fan out on instead of local processes.")]
PlanOpt = Annotated[int | None, typer.Option(help="Plan id (default: the latest).")]


def handle_errors(func):
    """Turn library errors into one-line messages and documented exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Interrupted as exc:
            err.print(f"[yellow]interrupted[/yellow]: {safe_line(exc)}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except MusicarkError as exc:
            err.print(f"[red]error:[/red] {safe_line(exc)}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            # Writes are atomic and long runs resumable, but which results a verb kept is
            # its own to say (it raises Interrupted with the count); claim no more here.
            err.print("[yellow]interrupted[/yellow]: finished steps are kept; no half-written "
                      "file is; run the command again to continue")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug: one line for users, the traceback on request
            known = user_error(exc)
            if known is not None:
                err.print(f"[red]error:[/red] {known}", highlight=False)
                raise typer.Exit(known.exit_code) from None
            if os.environ.get("MUSICARK_DEBUG"):
                raise
            err.print(f"[red]internal error:[/red] {type(exc).__name__}: {safe_line(exc)} "
                      "(run again with MUSICARK_DEBUG=1 for the traceback, and please report "
                      "it)", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def print_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    # A lone surrogate (from a `\ud800` escape in stored JSON) cannot be written as UTF-8:
    # it goes out as the same JSON escape, which reads back to the same string.
    sys.stdout.write(SURROGATE.sub(_escape, text) + "\n")


# C0 (but newline: a multi-line cell is harmless), DEL, C1, the bidirectional overrides
# that make a name display as another, and lone surrogates (no terminal encoding has them).
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(value: Any) -> Any:
    """Data as a terminal cell: control characters (ANSI escapes, bells, carriage returns
    that would rewrite the screen) shown as \\xNN or \\uNNNN, and no Rich markup read from
    it. Anything not a string (a Text or other renderable the CLI built on purpose) passes
    unchanged."""
    if not isinstance(value, str):
        return value
    return Text(CONTROL.sub(_escape, value))


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_line(value: Any) -> str:
    """Data (a path in an error, a file name in a progress line) made safe to embed in a
    Rich markup string: control characters escaped as `safe_text` does, markup escaped."""
    return escape(CONTROL.sub(_escape, str(value)))


class Table(RichTable):
    """A Rich table whose string cells and title are data: every CLI table is one of these,
    so a file or track name can never drive the terminal."""

    def __init__(self, *headers: Any, title: Any = None, **kwargs: Any) -> None:
        super().__init__(*headers, title=safe_text(title) if title else title, **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*(safe_text(c) for c in cells), **kwargs)


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
