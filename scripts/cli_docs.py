"""Regenerate docs/cli.md from the commands' own --help (a test checks it is up to date).

Usage: python scripts/cli_docs.py > docs/cli.md
"""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from musicark.cli import app

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def command_paths(group: typer.Typer, prefix: list[str]) -> list[list[str]]:
    paths = []
    for info in group.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        paths.append([*prefix, name])
    for sub in group.registered_groups:
        paths += command_paths(sub.typer_instance, [*prefix, sub.name])
    return sorted(paths)


def help_text(path: list[str]) -> str:
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="musicark", env=env)
    return ANSI.sub("", result.output).rstrip()


def render() -> str:
    parts = ["# musicark command reference", "",
             "Generated from each command's `--help` by `scripts/cli_docs.py`; do not edit.", "",
             "Exit codes: 0 success, 1 unexpected error, 2 bad usage or query, 3 no archive, "
             "4 archive exists, 5 source exists, 6 unreadable source, 7 not in catalog, "
             "8 bad config, 9 done but something left out (bad rows with `--strict`, paths "
             "`ingest` could not walk or read), 10 another ingest is running, "
             "11 fixity failure (bytes differ from their SHA-256), 12 damaged catalog database, "
             "130 interrupted.", ""]
    for path in command_paths(app, []):
        parts += [f"## musicark {' '.join(path)}", "", "```text", help_text(path), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
