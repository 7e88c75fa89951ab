"""Release paths, buckets, shard cuts, piece sizes and the seed planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from musicark.cli import app
from musicark.errors import BadQuery
from musicark.release import seed_plan
from musicark.release.paths import MAX_COMPONENT, resolve_collisions, sanitize, track_path
from musicark.release.shards import (
    auto_piece_length,
    bucket_of,
    parse_buckets,
    parse_piece_length,
)


@pytest.mark.parametrize("hostile", ["..", ".", "../../etc/passwd", "a/b\\c", "CON", "nul.txt",
                                     "com1", "x\x00y\x1fz", " trailing. ", "\u202e", "",
                                     "a:b*c?d\"e<f>g|h"])
def test_components_are_portable(hostile: str) -> None:
    out = sanitize(hostile)
    assert out and "/" not in out and "\\" not in out and "\x00" not in out
    assert not out.startswith(".") and not out.endswith((".", " "))
    assert out.split(".")[0].upper() not in {"CON", "NUL", "COM1"}
    assert not any(c in out for c in ':*?"<>|')


def test_a_percent_sign_never_reaches_a_release_name() -> None:
    """RFC 8493 writes '%' as %25 in manifests and bagit-python does not decode it: a shard
    holding '100% Pure' failed bagit-python's validation."""
    parts = track_path("popularity-3", artist="50% Off", album="100% Pure", album_id="x1",
                       year="1999", disc=1, number=1, discs=1, title="%25 %0A", ext="flac")
    assert "%" not in "/".join(parts)


def test_long_names_are_cut_on_character_boundaries_keeping_the_extension() -> None:
    parts = track_path("popularity-3", artist="夢" * 200, album="Ä" * 300, album_id="x1",
                       year="1999", disc=2, number=7, discs=2, title="ł" * 400, ext="flac")
    assert all(len(p.encode("utf-8")) <= MAX_COMPONENT for p in parts)
    assert parts[-1].startswith("2-07 ") and parts[-1].endswith(".flac")
    assert parts[1:3] == ("夢", "夢夢")
    assert parts[4].startswith("1999 Ä")
    unknown = track_path("b", artist=None, album=None, album_id="album-3", year=None,
                         disc=None, number=None, discs=1, title=None, ext="ogg")
    assert unknown[1:] == ("U", "UN", "Unknown Artist", "Unknown Album (album-3)",
                           "00 Unknown Artist - Untitled.ogg")


def test_collisions_get_numbered_case_insensitively() -> None:
    paths = [("b", "Song.flac"), ("b", "song.flac"), ("b", "SONG.flac"), ("b", "other.flac")]
    assert resolve_collisions(paths) == [("b", "Song.flac"), ("b", "song (2).flac"),
                                         ("b", "SONG (3).flac"), ("b", "other.flac")]


def test_buckets_follow_the_reference_by_default() -> None:
    bounds = parse_buckets(None)
    assert bucket_of(77, bounds).name == "popularity-50-to-100"
    assert bucket_of(28, bounds).name == "popularity-28"
    assert bucket_of(None, bounds).name == "popularity-unknown"
    coarse = parse_buckets("50,20,0")
    assert [bucket_of(p, coarse).name for p in (100, 20, 19, 0)] == [
        "popularity-50-to-100", "popularity-20-to-49", "popularity-0-to-19",
        "popularity-0-to-19"]
    for bad in ("50,20", "x", "150,0"):
        with pytest.raises(BadQuery):
            parse_buckets(bad)


def test_piece_length_auto_and_explicit() -> None:
    assert auto_piece_length([5_000_000] * 20_000) == 4 << 20  # capped by the median file
    assert auto_piece_length([300_000_000] * 400) == 16 << 20  # at most 16 MiB
    assert auto_piece_length([1000]) == 16 << 10  # at least 16 KiB
    assert parse_piece_length("1MiB", [1]) == 1 << 20
    for bad in ("1000", "24KiB", "8KiB"):
        with pytest.raises(BadQuery):
            parse_piece_length(bad, [1])


TORRENTS = [
    {"name": "meta-old", "metadata": True, "data_size": 10**9, "added": "2026-01-01"},
    {"name": "meta-new", "metadata": True, "data_size": 10**9, "added": "2026-06-01"},
    {"name": "hot", "data_size": 400 * 10**9, "listens_covered": 9e9, "btih": "aa"},
    {"name": "warm", "data_size": 300 * 10**9, "listens_covered": 2e9, "btih": "bb"},
    {"name": "tail-a", "data_size": 500 * 10**9, "listens_covered": 5e7, "btih": "cc"},
    {"name": "tail-b", "data_size": 500 * 10**9, "listens_covered": 4e7, "btih": "dd"},
]


def test_seed_plan_protects_listens_at_risk_within_the_budget() -> None:
    seeders = {"aa": 12, "bb": 1, "cc": 0, "dd": 40}
    plan = seed_plan(TORRENTS, 1.0e12, seeders=seeders)
    names = [p["name"] for p in plan["picks"]]
    assert names[0] == "meta-new" and "meta-old" not in names
    assert plan["bytes"] <= 1.0e12
    # "hot" has many listens but 12 seeders; "warm" has one seeder: warm is more at risk.
    assert "warm" in names and "hot" not in names
    assert all(p["why"] for p in plan["picks"])
    reference = seed_plan(TORRENTS, 1.0e12, seeders=seeders, rule="reference", seed=3)
    assert reference["bytes"] <= 1.0e12
    assert plan["listens_protected"] >= reference["listens_protected"]
    assert reference == seed_plan(TORRENTS, 1.0e12, seeders=seeders, rule="reference", seed=3)
    with pytest.raises(BadQuery):
        seed_plan(TORRENTS, 0)


def test_seed_plan_cli_reads_seeder_files(tmp_path: Path) -> None:
    listing = tmp_path / "torrents.json"
    listing.write_text(json.dumps({"torrents": TORRENTS}))
    counts = tmp_path / "seeders.csv"
    counts.write_text("aa,12\nbb,1\ncc,0\ndd,40\n")
    result = CliRunner().invoke(app, ["seed-plan", str(listing), "--max-tb", "1",
                                      "--seeders", str(counts), "--json"])
    assert result.exit_code == 0, result.output
    assert "warm" in [p["name"] for p in json.loads(result.stdout)["picks"]]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(app, ["seed-plan", str(bad), "--max-tb", "1"])
    assert result.exit_code == 2


def test_seeder_counts_that_match_no_torrent_are_reported(tmp_path: Path) -> None:
    plan = seed_plan(TORRENTS, 1.0e12, seeders={"aa": 3, "zz": 9, "warm ": 1})
    assert plan["unmatched_seeders"] == ["warm ", "zz"]
    listing = tmp_path / "torrents.json"
    listing.write_text(json.dumps({"torrents": TORRENTS}))
    counts = tmp_path / "seeders.csv"
    counts.write_text("name,seeders\nAA,12\nhot-typo,1\n")
    result = CliRunner().invoke(app, ["seed-plan", str(listing), "--max-tb", "1",
                                      "--seeders", str(counts)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "1 seeder count(s)" in result.output and "hot-typo" in result.output
    counts.write_text("aa,12\nbb,one\n")
    result = CliRunner().invoke(app, ["seed-plan", str(listing), "--max-tb", "1",
                                      "--seeders", str(counts)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "line 2 is not KEY,SEEDERS" in result.output
