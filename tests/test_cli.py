"""The command line through Typer's runner: output, --json and exit codes scripts rely on."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ROOT, require_testdata
from musicark.cli import app
from musicark.synth import write_catalog


def invoke(*args: str, archive: Path | None = None):
    env = {"COLUMNS": "120", "NO_COLOR": "1"}
    if archive is not None:
        env["MUSICARK_ARCHIVE"] = str(archive)
    return CliRunner().invoke(app, list(args), env=env, prog_name="musicark")


@pytest.fixture
def cli_archive(tmp_path: Path) -> Path:
    path = tmp_path / "arc"
    result = invoke("init", str(path))
    assert result.exit_code == 0, result.output
    src = tmp_path / "c.jsonl"
    write_catalog(src, 2000, "api-json", seed=5)
    result = invoke("catalog", "import", "--format", "api-json", str(src), "--json",
                    archive=path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["tracks"] == 2000
    return path


def test_read_verbs_with_json(cli_archive: Path) -> None:
    hits = json.loads(invoke("search", "love", "--json", archive=cli_archive).stdout)
    assert hits and all("love" in (h["name"] + h["artists"] + (h["album"] or "")).lower()
                        for h in hits)
    isrc = hits[0]["isrc"]
    found = json.loads(invoke("lookup", isrc, "--json", archive=cli_archive).stdout)
    assert found[isrc]["tracks"][0]["isrc"] == isrc
    shown = json.loads(invoke("show", f"track:{hits[0]['rowid']}", "--json",
                              archive=cli_archive).stdout)
    assert shown["entity"] == "track" and shown["isrc"] == isrc
    drawn = json.loads(invoke("shuffle", "-n", "3", "--json", archive=cli_archive).stdout)
    assert len(drawn) == 3
    stats = json.loads(invoke("stats", "--json", archive=cli_archive).stdout)
    assert stats["totals"]["tracks"] == 2000
    sources = json.loads(invoke("catalog", "sources", "--json", archive=cli_archive).stdout)
    assert sources[0]["status"] == "complete"


def test_tables_and_export(cli_archive: Path, tmp_path: Path) -> None:
    result = invoke("search", "love", "-n", "3", archive=cli_archive)
    assert result.exit_code == 0 and "track:" in result.stdout
    result = invoke("stats", "--plots", str(tmp_path / "charts"), archive=cli_archive)
    assert result.exit_code == 0 and "coverage.png" in result.stdout
    out = tmp_path / "back.jsonl"
    result = invoke("catalog", "export", "--format", "api-json", "--out", str(out),
                    archive=cli_archive)
    assert result.exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) > 2000  # artists and tracks


def test_exit_codes(cli_archive: Path, tmp_path: Path) -> None:
    assert invoke("init", str(cli_archive)).exit_code == 4
    assert invoke("search", "x", archive=tmp_path / "nowhere").exit_code == 3
    assert invoke("show", "track:999999", archive=cli_archive).exit_code == 7
    assert invoke("search", "x", "-n", "0", archive=cli_archive).exit_code == 2
    missing = invoke("catalog", "import", "-f", "table", str(tmp_path / "no.csv"),
                     archive=cli_archive)
    assert missing.exit_code == 6 and "does not exist" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("track_id,name,popularity\na,A,1\nb,B,oops\n")
    assert invoke("catalog", "import", "-f", "table", str(bad), archive=cli_archive).exit_code == 0
    again = invoke("catalog", "import", "-f", "table", str(bad), archive=cli_archive)
    assert again.exit_code == 5
    strict = invoke("catalog", "import", "-f", "table", str(bad), "--name", "b2", "--strict",
                    archive=cli_archive)
    assert strict.exit_code == 9 and "line 3" in strict.output


def test_every_command_has_help_and_is_documented() -> None:
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "scripts" / "cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.command_paths(app, []):
        text = module.help_text(path)
        assert "Usage:" in text and "Example:" in text or path == ["version"], path
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == module.render(), (
        "docs/cli.md is stale: run `python scripts/cli_docs.py > docs/cli.md`")


def test_ingest_ledger_and_match_verbs(tmp_path: Path) -> None:
    shared = require_testdata() / "audio" / "mutagen"
    arc = tmp_path / "arc"
    assert invoke("init", str(arc)).exit_code == 0
    result = invoke("ingest", str(shared / "emptyfile.mp3"), str(shared / "xing.mp3"),
                    "--workers", "1", "--json", archive=arc)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["quarantined_by_reason"] == {"empty file": 1}
    rows = json.loads(invoke("ledger", "--status", "quarantined", "--json",
                             archive=arc).stdout)
    assert [r["reason"] for r in rows] == ["empty file"]
    assert invoke("ledger", "--status", "lost", archive=arc).exit_code == 2
    matched = json.loads(invoke("match", "--json", archive=arc).stdout)
    assert matched["matched_files"] == 0 and len(matched["unmatched"]) == 1
    assert invoke("ingest", str(tmp_path / "missing"), archive=arc).exit_code == 2
