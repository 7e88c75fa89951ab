"""`init`, `synth audio` and `seed-plan` on what a careless user gives them: a file where a
folder goes, someone else's catalog.sqlite, a negative count, NaN sizes, absurd JSON."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from musicark.archive import Archive
from musicark.cli import app
from musicark.errors import ArchiveExists, BadQuery
from musicark.release.seedplan import load_seeders, load_torrents, seed_plan
from musicark.synth_audio import write_archive_audio, write_audio

DEEP = "[" * 100_000 + "]" * 100_000


def test_init_over_a_file_or_a_store_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BadQuery, match="cannot create an archive"):
        Archive.create(tmp_path / "afile")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "store").write_text("x")
    result = CliRunner().invoke(app, ["init", str(tmp_path / "dir")])
    assert result.exit_code == 2 and "cannot create an archive" in result.stderr


@pytest.mark.parametrize("kind", ["junk", "foreign database"])
def test_init_refuses_a_catalog_sqlite_that_is_not_ours(tmp_path: Path, kind: str) -> None:
    catalog = tmp_path / "catalog.sqlite"
    if kind == "junk":
        catalog.write_text("not a database")
    else:
        with sqlite3.connect(catalog) as conn:
            conn.execute("CREATE TABLE theirs(x)")
    before = catalog.read_bytes()
    with pytest.raises(ArchiveExists, match="not a musicark catalog"):
        Archive.create(tmp_path)
    assert catalog.read_bytes() == before and not (tmp_path / "store").exists()


def test_init_continues_an_init_that_was_killed_before_its_config(tmp_path: Path) -> None:
    """Killed after its catalog and store, before its config appeared (a half-written
    temporary config left behind): init again finishes it, keeping what the first made."""
    path = tmp_path / "a"
    Archive.create(path, name="first").close()
    (path / "musicark.toml").unlink()
    (path / "musicark.toml.tmp").write_text('name = "fir')
    (path / "store" / "kept").write_bytes(b"x")
    Archive.create(path, name="second").close()
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith("catalog.sqlite-")
                  ) == ["catalog.sqlite", "musicark.toml", "store"]
    assert (path / "store" / "kept").read_bytes() == b"x"
    with Archive.open(path) as arc:
        assert arc.settings.name == "second"
        assert arc.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        schema = arc.conn.execute("PRAGMA user_version").fetchone()[0]
        inits = arc.conn.execute("SELECT outcome, detail FROM events WHERE kind = "
                                 "'archive.init' ORDER BY id").fetchall()
        assert inits == [("ok", f'{{"schema": {schema}}}')] * 2  # the first one's kept
        assert arc.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
    with pytest.raises(ArchiveExists, match="already a musicark archive"):
        Archive.create(path)


def test_synth_audio_from_an_archive_never_renders_a_negative_count(archive: Archive,
                                                                    tmp_path: Path) -> None:
    """LIMIT -1 is no limit to SQLite: it rendered every track of the catalog."""
    with pytest.raises(BadQuery, match="1 or more"):
        write_archive_audio(archive, tmp_path / "out", -1)
    result = CliRunner().invoke(app, ["synth", "audio", "--tracks", "-1", str(tmp_path / "o")])
    assert result.exit_code == 2


def test_synth_audio_into_a_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(BadQuery, match="cannot write audio files there"):
        write_audio(tmp_path / "afile", 1)


def test_synth_catalog_into_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    """It was an internal error (FileNotFoundError on its temporary file)."""
    from musicark.synth import write_catalog

    with pytest.raises(BadQuery, match="no such directory"):
        write_catalog(tmp_path / "missing" / "c.csv", 10)


@pytest.mark.parametrize("size", [math.nan, -1.0, 0.0])
def test_seed_plan_refuses_a_budget_that_is_not_positive(size: float) -> None:
    with pytest.raises(BadQuery, match="--max-tb must be positive"):
        seed_plan([{"name": "a", "data_size": 10}], size)


def test_seed_plan_inputs_nested_too_deeply_are_bad_queries(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    with pytest.raises(BadQuery, match="not a torrents.json"):
        load_torrents(deep)
    with pytest.raises(BadQuery, match="cannot read seeder counts"):
        load_seeders(deep)


def test_paths_that_look_like_rich_markup_are_printed_as_text(tmp_path: Path) -> None:
    """init and synth audio did their work, then crashed printing a path such as
    '.../[/x]' (a folder '[' holding 'x]'): MarkupError, exit 1."""
    target = tmp_path / "[" / "x]"
    result = CliRunner().invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert f"created archive {target}" in result.stdout
    audio = CliRunner().invoke(app, ["synth", "audio", "--tracks", "1", "--catalog-tracks",
                                     "300", str(tmp_path / "[" / "y]")])
    assert audio.exit_code == 0, audio.output
    assert f"to {tmp_path}/[/y]" in audio.stderr
