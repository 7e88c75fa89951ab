"""Matching a person can steer: review doubtful matches, accept or reject them, and no
automatic run undoes a decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from mutagen.flac import FLAC

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.errors import BadQuery, NotInCatalog
from musicark.ingest.match import match_files
from musicark.ingest.pipeline import ingest
from musicark.ingest.review import accept, file_rowid, reject, review
from musicark.synth import write_catalog
from musicark.synth_audio import encode, render, write_audio


def _links(archive: Archive, file: int) -> list[tuple[int, str]]:
    return archive.conn.execute(
        "SELECT track_rowid, method FROM track_files WHERE file_rowid = ? ORDER BY 1",
        (file,)).fetchall()


def test_review_accept_reject_survive_rematch(archive: Archive, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    write_catalog(catalog, 3000, seed=8)
    import_source(archive, "table", catalog)
    music = tmp_path / "music"
    files = write_audio(music, 4, seed=8, catalog_tracks=3000)
    assert len(files) == 4
    stranger = music / "stranger.flac"  # a piece of its own, tagged with an unknown title
    encode(render(20, seed=987654), stranger, "flac", "flac", "s16", None)
    tags = FLAC(stranger)
    tags["title"] = "Qwertyuiop Asdfgh"
    tags.save()
    assert ingest(archive, [music], workers=1).matched == 4

    found = review(archive, below=1.01)  # every automatic link below 1.01: the fuzzy one
    assert [x["why"].split(" match")[0] for x in found["low_confidence"]] == ["fuzzy"]
    [lonely] = found["unmatched"]
    assert lonely["title"] == "Qwertyuiop Asdfgh" and lonely["path"].endswith("stranger.flac")
    assert lonely["why"] == "unmatched: no catalog track shares its title words"

    fuzzy_file = found["low_confidence"][0]["file"]
    sha = archive.conn.execute("SELECT sha256 FROM files WHERE rowid = ?",
                               (lonely["file"],)).fetchone()[0]
    assert file_rowid(archive, sha[:10]) == lonely["file"] == file_rowid(archive, sha)
    result = accept(archive, sha[:10], "track:42")
    assert result == {"file": lonely["file"], "track": 42, "decision": "accept"}
    reject(archive, f"file:{fuzzy_file}")
    assert _links(archive, fuzzy_file) == []

    match_files(archive, rematch=True)
    assert _links(archive, lonely["file"]) == [(42, "manual")]
    assert _links(archive, fuzzy_file) == []  # rejected: never matched automatically again
    assert review(archive, below=1.01) == {"low_confidence": [], "unmatched": []}

    with pytest.raises(NotInCatalog):
        accept(archive, "file:99999", "track:1")
    with pytest.raises(BadQuery):
        accept(archive, "not-a-file", "track:1")
    with pytest.raises(NotInCatalog):
        accept(archive, f"file:{fuzzy_file}", "track:999999")
    events = archive.conn.execute(
        "SELECT outcome FROM events WHERE kind = 'catalog.match.manual' ORDER BY id").fetchall()
    assert events == [("accepted",), ("rejected",)]
