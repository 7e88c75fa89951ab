"""Habits every verb shares: --version, --archive everywhere, one-line errors off a terminal,
and verbs that say why they did nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from musicark.release.build import nothing_new


def run(*args: str, archive: Path | None = None) -> subprocess.CompletedProcess:
    """The real command in a pipe, as scripts and CI see it (no terminal, no COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "MUSICARK_ARCHIVE")}
    if archive is not None:
        env["MUSICARK_ARCHIVE"] = str(archive)
    return subprocess.run([sys.executable, "-m", "musicark", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_version_flag() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("musicark ")


def test_init_takes_archive_and_serve_help_tells_the_truth(tmp_path: Path) -> None:
    target = tmp_path / "arc"
    result = run("init", "--archive", str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "catalog.sqlite").is_file()
    assert run("init").returncode == 2
    other = tmp_path / "other"
    both = run("init", str(other), "--archive", str(tmp_path / "third"))
    assert both.returncode == 2 and "two places" in both.stderr, both.stderr
    assert not other.exists() and not (tmp_path / "third").exists()
    # an exported MUSICARK_ARCHIVE is a default, not a conflict
    assert run("init", str(other), archive=target).returncode == 0
    assert (other / "catalog.sqlite").is_file()
    text = run("serve", "--help").stdout
    assert "--archive" in text and "/api/v1/openapi.json" in text and "/docs" not in text


def test_errors_are_one_line_without_a_leading_blank(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 6)
    result = run("release", "create", "r1", "--archive", str(deep))
    assert result.returncode == 3
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (
        result.stderr)
    target = tmp_path / "arc"
    run("init", str(target))
    result = run("release", "create", "r1", archive=target)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "{" not in result.stderr  # words, not a printed dict


def test_nothing_new_to_release_in_words() -> None:
    text = nothing_new({"planned, but no file in the archive": 62, "opus75 not derived yet": 1})
    assert text == ("nothing new to release: 62 tracks left out: planned, but no file in the "
                    "archive (ingest and match files for them); 1 track left out: opus75 not "
                    "derived yet (run musicark derive)")
    assert "earlier release" in nothing_new({})


def test_derive_and_tag_say_why_they_did_nothing(tmp_path: Path) -> None:
    from musicark.synth import write_catalog

    target = tmp_path / "arc"
    run("init", str(target))
    catalog = tmp_path / "c.csv"
    write_catalog(catalog, 500, seed=3)
    assert run("catalog", "import", "--format", "table", str(catalog),
               archive=target).returncode == 0
    assert run("plan", "create", "--budget", "1GB", archive=target).returncode == 0
    derived = run("derive", archive=target)
    assert derived.returncode == 0
    assert "0 files to encode: none of the" in derived.stdout and "has a file" in derived.stdout
    tagged = run("tag", archive=target)
    assert tagged.returncode == 0 and "0 files to tag: plan 1 keeps no track with a file" in (
        tagged.stdout)
