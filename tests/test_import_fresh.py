"""The fast path of an import into an empty catalog: rollback journal, deferred track-id index,
phase timings; and that a catalog with rows, or one open elsewhere, takes the general path."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.synth import write_catalog


def _journal_modes(archive: Archive, src: Path, **kwargs) -> tuple[set[str], object]:
    seen: set[str] = set()

    def phase(name: str) -> None:
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
                            "building the search index", "committing"]
    assert 0 < sum(phases.values()) <= report.seconds + 0.01
