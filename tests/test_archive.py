from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog.schema import MIGRATIONS
from musicark.errors import ArchiveExists, ArchiveNotFound, BadConfig


def test_create_makes_config_catalog_and_store(tmp_path: Path) -> None:
    arc = Archive.create(tmp_path / "a", name="Test Archive")
    assert (arc.path / "musicark.toml").is_file()
    assert (arc.path / "store").is_dir()
    assert arc.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert arc.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert arc.settings.name == "Test Archive"
    assert [e["kind"] for e in arc.events()] == ["archive.init"]
    arc.close()
    with pytest.raises(ArchiveExists):
        Archive.create(tmp_path / "a")


def test_locate_prefers_explicit_then_env_then_cwd(tmp_path: Path, monkeypatch) -> None:
    one = Archive.create(tmp_path / "one")
    two = Archive.create(tmp_path / "two")
    one.close()
    two.close()
    monkeypatch.setenv("MUSICARK_ARCHIVE", str(two.path))
    monkeypatch.chdir(one.path)
    assert Archive.locate(one.path).path == one.path
    assert Archive.locate().path == two.path
    monkeypatch.delenv("MUSICARK_ARCHIVE")
    assert Archive.locate().path == one.path
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArchiveNotFound, match="musicark init"):
        Archive.locate()


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    Archive.create(tmp_path / "a").close()
    (tmp_path / "a" / "musicark.toml").write_text("[popularity]\na = 'x'\n")
    with pytest.raises(BadConfig, match="popularity"):
        Archive.open(tmp_path / "a")


def test_config_values_are_read(tmp_path: Path) -> None:
    Archive.create(tmp_path / "a").close()
    cfg = tmp_path / "a" / "musicark.toml"
    cfg.write_text(cfg.read_text().replace("b = 0.15", "b = 0.2"))
    with Archive.open(tmp_path / "a") as arc:
        assert arc.settings.popularity.b == 0.2


def test_core_does_not_import_ui_libraries() -> None:
    code = (
        "import sys, musicark.archive, musicark.catalog, musicark.catalog.search, "
        "musicark.catalog.export, musicark.catalog.stats, musicark.synth\n"
        "bad = [m for m in ('typer', 'rich', 'fastapi', 'jinja2') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readonly_open_cannot_write(archive: Archive) -> None:
    with Archive.open(archive.path, readonly=True) as ro, pytest.raises(sqlite3.OperationalError):
        ro.conn.execute("INSERT INTO markets(codes) VALUES ('[]')")


def test_public_api_is_pinned() -> None:
    import musicark

    assert sorted(musicark.__all__) == [
        "Archive", "ArchiveExists", "ArchiveNotFound", "BadConfig", "BadQuery", "BadSource",
        "MusicarkError", "NotInCatalog", "PopularityModel", "Settings", "SourceExists",
        "__version__",
    ]
