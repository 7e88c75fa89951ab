"""musicark.trust: the one place a value from release data becomes a checked value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musicark import trust
from musicark.release.schema import file_record, torrent_entry, track_ref


@pytest.mark.parametrize("value", ["data/a.flac", "restore/ab.zst", "a b/ü/c"])
def test_a_relative_normalized_path_is_kept_as_given(value: str) -> None:
    assert trust.relative_path(value) == value


@pytest.mark.parametrize("value, rule", [
    ("/etc/passwd", "absolute"), ("../x", "normalized"), ("data/../../x", "normalized"),
    ("data//x", "normalized"), ("data/./x", "normalized"), ("data/", "normalized"),
    (".", "normalized"), ("data\\x", "backslash"), ("data/\0x", "NUL"), ("", "non-empty"),
    (["data"], "non-empty string"), (None, "non-empty string"), ("a/" * 3000, "normalized"),
    ("x" * 5000, "longer than")])
def test_a_path_breaking_a_rule_is_refused_naming_it(value: object, rule: str) -> None:
    with pytest.raises(trust.Refused, match=rule):
        trust.relative_path(value)


def test_inside_resolves_symlinks_and_refuses_what_leads_out(tmp_path: Path) -> None:
    root = tmp_path / "release"
    (root / "in").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (root / "out").symlink_to(tmp_path)
    (root / "self").symlink_to(root / "in")
    assert trust.inside(root, "self/x") == root / "self" / "x"
    with pytest.raises(trust.Refused, match="leads outside"):
        trust.inside(root, "out/secret")
    with pytest.raises(trust.Refused, match="not a regular file"):
        trust.regular_file(root, "self")
    os.mkfifo(root / "in" / "fifo")
    with pytest.raises(trust.Refused, match="not a regular file"):
        trust.read_regular(root / "in" / "fifo", "f", limit=10)
    (root / "in" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(trust.Refused, match="symbolic link"):
        trust.read_regular(root / "in" / "link", "f", limit=10)
    (root / "in" / "big").write_bytes(b"x" * 11)
    with pytest.raises(trust.Refused, match="more than the 10 allowed"):
        trust.read_regular(root / "in" / "big", "f", limit=10)


@pytest.mark.parametrize("value", [1, True, 1.5, "1", 2**63, -1, None])
def test_integers_are_ints_within_sqlite(value: object) -> None:
    if value == 1 and value is not True and isinstance(value, int):
        assert trust.integer(value, "n") == 1
        return
    with pytest.raises(trust.Refused):
        trust.integer(value, "n")


def test_json_nested_too_deeply_or_with_endless_digits_is_refused() -> None:
    with pytest.raises(trust.Refused, match="nested too deeply"):
        trust.loads("[" * 100_000, "x")
    with pytest.raises(trust.Refused, match="not JSON"):
        trust.loads("1" * 5000, "x")


GOOD = {"path": "data/a.flac", "sha256": "a" * 64, "size": 3, "tier": "original",
        "licence": "CC0-1.0", "source_sha256": None, "extra": "dropped",
        "restore": {"patch": "restore/x.zst", "patch_sha256": "b" * 64, "sha256": "c" * 64},
        "tracks": [{"track": "track:7", "source": "s", "ext_id": "e", "title": "t",
                    "popularity": 5, "expected_listens": 1.5}]}


def test_a_file_record_keeps_only_its_known_fields() -> None:
    record = file_record(GOOD)
    assert "extra" not in record and record["restore"]["patch"] == "restore/x.zst"
    assert record["tracks"][0]["track"] == "track:7" and track_ref("track:7") == 7


@pytest.mark.parametrize("change, rule", [
    ({"path": "restore/x"}, "not under data/"),
    ({"sha256": "A" * 64}, "64 lowercase hex"),
    ({"size": True}, "size is not an integer"),
    ({"restore": {"patch": "data/x", "patch_sha256": "b" * 64, "sha256": "c" * 64}},
     "tag file"),
    ({"restore": {"patch": "restore/x.zst", "patch_sha256": "/tmp/x", "sha256": "c" * 64}},
     "restore.patch_sha256"),
    ({"tracks": [{"track": "track:0"}]}, "track:N"),
    ({"tracks": [{"track": "track:²"}]}, "track:N"),
    ({"tracks": [{"track": "track:1", "title": ["x"]}]}, "title is not a string"),
    ({"tracks": [{"track": "track:1", "popularity": "high"}]}, "popularity is not a number"),
    ({"licence": 5}, "licence is not a string")])
def test_a_bad_field_refuses_the_record_naming_it(change: dict, rule: str) -> None:
    with pytest.raises(trust.Refused, match=rule):
        file_record({**GOOD, **change})


def test_a_torrent_entry_names_a_single_folder() -> None:
    entry = {"name": "pub-x", "release": "r1", "torrent": "torrents/pub-x.torrent",
             "metadata": False, "btih": "0" * 40, "data_size": 10}
    assert torrent_entry(entry)["data_size"] == 10
    for bad, rule in (({"name": "../x"}, "normalized"), ({"name": "a/b"}, "single folder"),
                      ({"btih": "zz"}, "btih"), ({"metadata": "yes"}, "metadata"),
                      ({"data_size": 2**64}, "data_size"), ({"torrent": None}, "torrent")):
        with pytest.raises(trust.Refused, match=rule):
            torrent_entry({**entry, **bad})


def test_a_query_past_its_budget_is_interrupted_not_left_running() -> None:
    import sqlite3

    from musicark.verify.snapshot import SnapshotRefused, bounded

    conn = sqlite3.connect(":memory:")
    endless = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
               "SELECT count(*) FROM r")
    with pytest.raises(SnapshotRefused, match="a query took more than 0 s"), \
            bounded(conn, 0.0, "snapshot"):
        conn.execute(endless).fetchone()
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the handler is gone afterwards
