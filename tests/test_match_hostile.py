"""`match review|accept|reject` and `show` on references nobody should type: digits of other
scripts, numbers past 64 bits, NaN scores, a report path that cannot be written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.search import show
from musicark.cli import app
from musicark.errors import BadQuery, NotInCatalog
from musicark.ingest.review import file_rowid, review
from musicark.synth import write_catalog


@pytest.mark.parametrize("ref", ["file:²", "file:١", "²", "file:-1", "file:1 OR 1=1",
                                 "0000000_", "sha256:"])
def test_odd_file_references_are_bad_queries(archive: Archive, ref: str) -> None:
    """'١' (Arabic-Indic one) passed str.isdigit and named file:1; '²' crashed int()."""
    with pytest.raises(BadQuery, match="not a file reference"):
        file_rowid(archive, ref)


@pytest.mark.parametrize("ref", ["track:99999999999999999999", "album:18446744073709551616",
                                 "artist:9223372036854775808"])
def test_rowids_past_64_bits_are_not_in_the_catalog(archive: Archive, tmp_path: Path,
                                                    ref: str) -> None:
    write_catalog(tmp_path / "c.csv", 50, seed=1)
    import_source(archive, "table", tmp_path / "c.csv")
    with pytest.raises(NotInCatalog):
        show(archive, ref)


@pytest.mark.parametrize("below", [math.nan, -5.0])
def test_review_score_out_of_range_is_refused(archive: Archive, below: float) -> None:
    with pytest.raises(BadQuery, match="score of 0 or more"):
        review(archive, below=below)


def test_match_report_that_cannot_be_written_is_refused_before_matching(
        archive: Archive, tmp_path: Path) -> None:
    for target in (tmp_path / "missing" / "r.json", tmp_path):
        result = CliRunner().invoke(app, ["match", "--report", str(target),
                                          "--archive", str(archive.path)])
        assert result.exit_code == 2, result.output
        assert "internal error" not in result.output
    assert archive.conn.execute("SELECT count(*) FROM events WHERE kind LIKE 'catalog.match%'"
                                ).fetchone()[0] == 0


@pytest.mark.parametrize("own", ["catalog.sqlite", "catalog.sqlite-wal", "musicark.toml",
                                 "store/r.json", "releases/x/r.json"])
def test_match_report_never_overwrites_the_archive_own_files(archive: Archive,
                                                             own: str) -> None:
    target = archive.path / own
    target.parent.mkdir(parents=True, exist_ok=True)
    before = target.read_bytes() if target.exists() else None
    result = CliRunner().invoke(app, ["match", "--report", str(target),
                                      "--archive", str(archive.path)])
    assert result.exit_code == 2 and "archive's own files" in result.output, result.output
    assert (target.read_bytes() if target.exists() else None) == before
    # a report beside them is fine
    fine = CliRunner().invoke(app, ["match", "--report", str(archive.path / "review.json"),
                                    "--archive", str(archive.path)])
    assert fine.exit_code == 0, fine.output
