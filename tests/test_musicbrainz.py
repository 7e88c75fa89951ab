"""MusicBrainz dumps (mbdump TSV) and JSON (WS/2) on the shared real material."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.importers.mbdump import unescape
from musicark.catalog.search import lookup, search, show
from musicark.errors import BadSource


@pytest.fixture
def mbdump(testdata: Path) -> Path:
    return testdata / "metadata" / "musicbrainz-mbdump"


def test_copy_text_unescaping() -> None:
    assert unescape("\\N") is None
    assert unescape("a\\tb\\\\c\\nd") == "a\tb\\c\nd"
    assert unescape("\\101\\x42") == "AB"
    assert unescape("plain") == "plain"


def test_mbdump_directory(archive: Archive, mbdump: Path) -> None:
    report = import_source(archive, "musicbrainz", mbdump)
    tracks = len((mbdump / "track").read_text(encoding="utf-8").splitlines())
    assert report.counts["tracks"] >= tracks  # every track, plus standalone recordings
    releases = len((mbdump / "release").read_text(encoding="utf-8").splitlines())
    assert report.counts["albums"] == releases
    assert report.bad_rows == 0
    # A release with its date, label and catalog number; a track with a two-artist credit.
    hits = search(archive, "Yeh Mojeza Bhi Mohabbat Kabhi")
    assert hits[0]["mbid"] == "8883356e-3c5e-4eb0-ad1c-89c05cc4a835"
    detail = show(archive, f"track:{hits[0]['rowid']}")
    assert detail["album"]["name"] == "A Milestone" and detail["disc_number"] == 1
    assert detail["extra"]["artist_credit"] == "Jagjit Singh"
    milestone = show(archive, "8268eaa7-895d-4787-aaad-56551e00aea5")
    assert milestone["entity"] == "album" and milestone["release_date"] == "1980"
    assert milestone["label"] == "EMI" and len(milestone["tracks"]) == 10
    # The one ISRC of the dump, on a recording that is on no release.
    found = lookup(archive, ["USJI10100576"])["USJI10100576"]["tracks"]
    assert [t["name"] for t in found] == ["The World's Greatest"]
    duo = archive.conn.execute(
        "SELECT count(*) FROM track_artists WHERE join_phrase = ' & '").fetchone()[0]
    assert duo > 0


def test_mbdump_tarball(archive: Archive, mbdump: Path, tmp_path: Path) -> None:
    tarball = tmp_path / "mbdump.tar.bz2"
    with tarfile.open(tarball, "w:bz2") as tar:
        for f in sorted(mbdump.iterdir()):
            if f.is_file() and f.name != "SOURCE.md":
                tar.add(f, arcname=f"mbdump/{f.name}")
    report = import_source(archive, "musicbrainz", tarball)
    assert report.counts["albums"] == 9
    assert not list(archive.path.glob(".mbdump-staging*"))


def test_not_a_dump_is_a_clear_error(archive: Archive, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadSource, match="missing table"):
        import_source(archive, "musicbrainz", tmp_path / "empty")
    assert archive.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0


def test_musicbrainz_json_documents(archive: Archive, testdata: Path) -> None:
    src = testdata / "metadata" / "musicbrainz-ws-json"
    report = import_source(archive, "musicbrainz-json", src)
    assert report.counts["tracks"] > 20 and report.counts["albums"] > 5
    reasons = " ".join(b.reason for b in report.bad_row_samples)
    assert "collection_list.json" in reasons and "release_null.json" in reasons
    dark = search(archive, "dark side moon money")
    assert dark and dark[0]["name"] == "Money" and dark[0]["artists"] == "Pink Floyd"
    album = show(archive, f"album:{dark[0]['album_rowid']}")
    assert album["release_date"] == "1973-03-24" and album["label"] == "Harvest"
    ed = lookup(archive, ["GBAHS1400099"])["GBAHS1400099"]["tracks"]
    assert ed[0]["name"] == "Thinking Out Loud" and ed[0]["artists"] == "Ed Sheeran"


def test_musicbrainz_json_lines(archive: Archive, testdata: Path, tmp_path: Path) -> None:
    """The data-dump form: one document per line, with one malformed line."""
    import json

    src = testdata / "metadata" / "musicbrainz-ws-json"
    lines = [json.dumps(json.loads((src / n).read_text("utf-8")))
             for n in ("release.json", "recording.json", "artist.json")]
    dump = tmp_path / "release.jsonl"
    dump.write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n", encoding="utf-8")
    report = import_source(archive, "musicbrainz-json", dump)
    assert [b.line for b in report.bad_row_samples] == [2]
    assert report.counts["tracks"] >= 10


def _without_line(path: Path, starts: str) -> int:
    """Remove the row whose first column is `starts`; returns its line number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, 1) if line.split("\t")[0] == starts)
    path.write_text("".join(lines[:number - 1] + lines[number:]), encoding="utf-8")
    return number


def test_mbdump_dangling_references_are_bad_rows(archive: Archive, mbdump: Path,
                                                 tmp_path: Path) -> None:
    """A track whose recording is missing, a credit whose artist is missing: reported."""
    import shutil

    dump = tmp_path / "mbdump"
    shutil.copytree(mbdump, dump)
    _without_line(dump / "recording", "12721552")  # the recording of track line 2
    _without_line(dump / "artist", "276197")  # Chitra Singh, credited on line 2
    report = import_source(archive, "musicbrainz", dump)
    reasons = [(b.line, b.reason) for b in report.bad_row_samples]
    assert (2, "track: recording 12721552 is not in the dump; track not imported") in reasons
    assert (2, "artist_credit_name: artist 276197 is not in the dump; row not imported") \
        in reasons
    tracks = len((mbdump / "track").read_text(encoding="utf-8").splitlines())
    imported_from_tracks = archive.conn.execute(
        "SELECT count(*) FROM tracks WHERE extra NOT LIKE '%standalone_recording%'").fetchone()[0]
    assert imported_from_tracks + sum(r.startswith("track:") for _, r in reasons) == tracks
    assert not list(archive.path.glob(".mbdump-staging*"))
