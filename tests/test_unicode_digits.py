"""str.isdigit() is true for '²' (which int() refuses) and '١' (which int() reads as 1):
every place that turned user or file text into a number checked it that way. Each now
takes ASCII digits only, so such text is a clear error or an absent value, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog.importers.mbdump import _int
from musicark.catalog.search import search_page
from musicark.errors import BadQuery
from musicark.ingest.tags import _numbers
from musicark.listens.formats import reader_for
from musicark.release.withdraw import _file_rowid


@pytest.mark.parametrize("cursor", ["².1", "1.²", "١.١"])
def test_search_cursor_of_other_digits_is_a_bad_query(archive: Archive, cursor: str) -> None:
    with pytest.raises(BadQuery, match="not a search cursor"):
        search_page(archive, "song", after=cursor)


def test_track_number_tag_of_other_digits_is_dropped_not_a_crash() -> None:
    """A FLAC tagged TRACKNUMBER=²/3 used to stop the whole ingest."""
    common = {"track_number": "²/3", "disc_number": "1/²"}
    _numbers(common)
    assert common == {"track_total": 3, "disc_number": 1}


def test_mbdump_integer_of_other_digits_is_none() -> None:
    assert _int("²") is None and _int("١") is None and _int("-12") == -12


def test_withdraw_file_reference_of_other_digits_is_not_a_file(archive: Archive) -> None:
    assert _file_rowid(archive, "file:²") is None
    assert _file_rowid(archive, "file:" + "9" * 30) is None


def test_listen_durations_of_other_digits_are_absent(tmp_path: Path) -> None:
    log = tmp_path / "x.scrobbler.log"
    log.write_text("#AUDIOSCROBBLER/1.1\n#TZ/UTC\n#CLIENT/x\n"
                   "A\tAl\tT\t1\t²\tL\t1700000000\t\n")
    table = tmp_path / "t.csv"
    table.write_text("ts,artist,title,duration_ms\n1700000000,A,B,²\n")
    for fmt, path in (("scrobbler-log", log), ("table", table)):
        rows = [r for b in reader_for(fmt)(path) for r in b.table.to_pylist()]
        assert [r["duration_ms"] for r in rows] == [None], fmt
