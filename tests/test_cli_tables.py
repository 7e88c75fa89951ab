"""Terminal tables show data, never obey it: control characters and Rich markup in file or
track names are printed as visible text."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from musicark.archive import Archive
from musicark.cli.app import Table, safe_line, safe_text
from musicark.ingest.pipeline import ingest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "\x1b[31mred\x1b]0;pwned\x07 \u202eevil [bold]x[red]"  # also a valid file name


def _ledger(arc: Path, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "musicark", "ledger", "--archive", str(arc),
                          *args], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "400"})
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_ledger_escapes_control_characters_in_file_names(tmp_path: Path,
                                                         testdata: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(testdata / "audio" / "music" / "fma" / "000002.mp3", src / f"{HOSTILE}.mp3")
    (src / f"{HOSTILE}.txt").write_text("not audio")
    arc = tmp_path / "arc"
    with Archive.create(arc) as opened:
        ingest(opened, [src], workers=1)
    for shown in (_ledger(arc), _ledger(arc, "--skipped")):
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "\\x1b[31mred\\x1b]0;pwned\\x07 \\u202eevil [bold]x[red]" in shown


def test_every_cli_table_is_the_escaping_one() -> None:
    for module in (ROOT / "src" / "musicark" / "cli").glob("*.py"):
        if module.name != "app.py":
            assert "rich.table" not in module.read_text(encoding="utf-8"), module.name
    console = Console(record=True, width=200, color_system=None)
    table = Table("name", title=f"about {HOSTILE}")
    table.add_row(HOSTILE)
    console.print(table)
    text = console.export_text()
    assert "\x1b" not in text and text.count("[bold]x[red]") == 2
    assert safe_text("line one\nline two").plain == "line one\nline two"
    assert safe_text(7) == 7


def test_error_lines_escape_data() -> None:
    console = Console(record=True, width=200, color_system=None)
    console.print(f"[red]error:[/red] no such file: {safe_line(HOSTILE)}")
    text = console.export_text()
    assert "\x1b" not in text and "[bold]x[red]" in text and "\\x1b[31mred" in text
