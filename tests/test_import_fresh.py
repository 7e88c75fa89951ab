"""The fast path of an import into an empty catalog: rollback journal, deferred track-id index,
phase timings; and that a catalog with rows, or one open elsewhere, takes the general path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.synth import write_catalog


def _journal_modes(archive: Archive, src: Path, **kwargs) -> tuple[set[str], object]:
    seen: set[str] = set()

    def phase(name: str) -> None:
        if name == "search terms":  # after the import's transaction, back in WAL
            return
        seen.add(archive.conn.execute("PRAGMA journal_mode").fetchone()[0])

    report = import_source(archive, "table", src, phase=phase, **kwargs)
    return seen, report


def test_fresh_catalog_is_filled_without_the_wal_then_back_to_wal(archive: Archive,
                                                                  tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    write_catalog(src, 2_000, "table", seed=5)
    modes, report = _journal_modes(archive, src)
    assert modes == {"delete"}
    assert archive.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert report.counts["tracks"] == 2_000
    # A second source finds rows already there: the WAL is kept (readers stay unblocked).
    modes, report = _journal_modes(archive, src, name="again")
    assert modes == {"wal"}
    assert report.counts["tracks"] == 2_000


def test_catalog_open_elsewhere_keeps_the_wal(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    write_catalog(src, 500, "table", seed=6)
    reader = sqlite3.connect(archive.path / "catalog.sqlite")
    reader.execute("SELECT count(*) FROM tracks").fetchone()
    try:
        modes, report = _journal_modes(archive, src)
    finally:
        reader.close()
    assert modes == {"wal"}
    assert report.counts["tracks"] == 500


def test_report_times_each_phase(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    write_catalog(src, 1_000, "table", seed=7)
    report = import_source(archive, "table", src)
    phases = report.as_dict()["phase_seconds"]
    assert list(phases) == ["reading", "writing rows", "building indexes",
                            "building the search index", "committing", "search terms"]
    assert 0 < sum(phases.values()) <= report.seconds + 0.01


def _repeats(tmp_path: Path, name: str) -> Path:
    # Rows 9, 19, ... 59 repeat the id of the row 7 before them (always an earlier batch).
    lines = [json.dumps({"track_id": f"t{i - 7}" if i % 10 == 9 else f"t{i}",
                         "name": f"Song {i}", "artists": [f"Artist {i % 3}"], "tempo": 100 + i})
             for i in range(60)]
    src = tmp_path / name
    src.write_text("\n".join(lines) + "\n")
    return src


def test_repeated_ids_across_batches_same_in_fresh_and_general_path(
        archive: Archive, tmp_path: Path, monkeypatch) -> None:
    """The fresh path (unique index built at the end) rejects exactly what the general one
    (unique index updated per row) does, with the same lines, and keeps the first rows."""
    import musicark.catalog.importers.table as table

    monkeypatch.setattr(table, "JSONL_BATCH", 7)  # repeats cross batches
    src = _repeats(tmp_path, "repeats.jsonl")
    fresh = import_source(archive, "table", src)
    general = import_source(archive, "table", src, name="second")
    expected = [(i + 1, f"duplicate track_id 't{i - 7}'") for i in range(9, 60, 10)]
    for report in (fresh, general):
        assert [(b.line, b.reason) for b in report.bad_row_samples] == expected
        assert report.counts["tracks"] == 60 - len(expected)
    first = dict(archive.conn.execute(
        "SELECT ext_id, name FROM tracks WHERE source_id = (SELECT min(id) FROM sources)"))
    assert len(first) == 54 and first["t2"] == "Song 2" and first["t52"] == "Song 52"
    links = archive.conn.execute("SELECT count(*) FROM track_artists").fetchone()[0]
    features = archive.conn.execute("SELECT count(*) FROM audio_features").fetchone()[0]
    assert links == features == fresh.counts["tracks"] + general.counts["tracks"]
    assert archive.conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'tracks_ext'").fetchone()[0] == 1


def test_hashed_rowids_keep_every_rowid_of_a_colliding_hash() -> None:
    import numpy as np

    from musicark.catalog.keys import HashedRowids

    seen = HashedRowids()
    for start in range(0, 100, 10):  # many levels, merged as they grow
        seen.add(np.arange(start, start + 10, dtype=np.int64) % 37,
                 np.arange(start, start + 10, dtype=np.int64))
    found = seen.candidates(np.array([5, 1000], np.int64))
    assert sorted(found) == [(0, 5), (0, 42), (0, 79)]


def test_json_lines_read_exactly_as_the_standard_library_reads_them() -> None:
    """The fast parser (orjson) never changes a value: big integers, NaN, lone surrogates,
    BOMs and UTF-16 read as `json.loads` reads them."""
    from musicark.catalog.importers.base import parse_json

    lines = [b'{"n": 18446744073709551616}', b'{"n": -99999999999999999999999}',
             b'{"s": "12345678901234567890"}', b'{"x": NaN, "y": -Infinity}',
             b'{"s": "\\ud800"}', b'\xef\xbb\xbf{"a": 1}', '{"a": "é"}'.encode("utf-16"),
             b'{"a": 1, "a": 2}', b'{"f": 0.1, "g": 1e400, "h": -0.0}',
             b'{"n": -9223372036854775809}', b'[9999999999999999999, -1234567890123456789]']
    for raw in lines:
        value, problem = parse_json(raw)
        # read as json reads it; a lone surrogate is then reported, as no UTF-8 holds it
        assert problem == ("text that UTF-8 cannot hold: a lone surrogate U+D800 in '\\ud800'; "
                           "record not imported" if b"ud800" in raw else None)
        assert repr(value) == repr(json.loads(raw)), raw


def test_read_only_open_after_a_killed_fresh_import(archive: Archive, tmp_path: Path) -> None:
    """A kill on the fresh path leaves a hot rollback journal; read-only commands still open
    the catalog (the journal is rolled back first) and see nothing of the killed import."""
    import subprocess
    import sys

    path = archive.path
    archive.close()
    script = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1]); c.isolation_level = None\n"
        "assert c.execute('PRAGMA journal_mode = DELETE').fetchone()[0] == 'delete'\n"
        "c.execute('PRAGMA cache_size = 10'); c.execute('BEGIN IMMEDIATE')\n"
        "c.execute(\"INSERT INTO sources(name, kind) VALUES ('x', 'table')\")\n"
        "c.executemany(\"INSERT INTO tracks(source_id, name) VALUES (1, ?)\","
        " (('n' * 500,) for _ in range(5000)))\n"
        "os._exit(9)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path / "catalog.sqlite")])
    assert proc.returncode == 9
    assert (path / "catalog.sqlite-journal").exists()
    with Archive.open(path, readonly=True) as reader:
        assert reader.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 0
        assert reader.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
    with Archive.open(path) as arc:
        assert arc.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
