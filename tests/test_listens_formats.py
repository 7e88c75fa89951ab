"""Each listens format on real files from shared testdata (counts, fields, bad rows with line
and reason), and small samples written from the formats' public documentation where no
real file exists (said so per test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicark.errors import BadQuery, BadSource
from musicark.listens.formats import reader_for
from musicark.listens.records import checked

LB = Path("metadata/listenbrainz/listenbrainz_testdata")
SPARK = Path("metadata/listenbrainz/listenbrainz_spark_testdata")


def read(fmt: str, path: Path, **kw) -> tuple[list[dict], list[tuple[int, str]]]:
    rows, rejects = [], []
    for batch in reader_for(fmt, kw.pop("columns", None))(path, **kw):
        batch = checked(batch)
        rows += batch.table.to_pylist()
        rejects += [(r.line, r.reason) for r in batch.rejects]
    return rows, rejects


def test_listenbrainz_jsonl_export(testdata: Path) -> None:
    rows, rejects = read("listenbrainz", testdata / LB / "listenbrainz_listens.jsonl")
    assert rejects == []
    assert [(r["artist"], r["title"], r["ts"]) for r in rows] == [
        ("The Stranglers", "Golden Brown", 1748964167),
        ("The Mamas & The Papas", "California Dreamin'", 1748967954)]
    first = rows[0]
    assert first["mbid"] == "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
    assert first["isrc"] == "GBAYE8100053" and first["ext_id"] == "2AX5E86cn9n2dgioZEjirI"
    assert first["album"] == "La Folie" and first["duration_ms"] == 206760


@pytest.mark.parametrize(("name", "kept", "rejects"), [
    ("listenbrainz_mixed_validity.jsonl", 3, [(2, "no artist"), (4, "no title")]),
    ("listenbrainz_all_invalid.jsonl", 0, [(1, "no artist"), (2, "no title"),
                                           (3, "no artist")]),
    ("invalid_listen_nan_in_json.json", 0, [(1, "timestamp is NaN or infinite")]),
    ("listen_having_unicode_null.json", 0, [(1, "NUL character in title")]),
    ("timestamp_in_ns.json", 0, [(1, "timestamp in nanoseconds")]),
    ("timestamp_before_lfm_founding.json", 0, [(1, "timestamp before 2002")]),
    ("too_long_tag.json", 0, [(1, "tag longer than 64 characters")]),
    ("too_many_tags.json", 0, [(1, "more than 50 tags")]),
    ("too_large_listen.json", 0, [(1, "listen larger than 10,240 bytes")]),
    ("invalid_listen_null_listened_at.json", 0, [(1, "no timestamp")]),
    ("invalid_listen_null_track_metadata.json", 0, [(1, "no track_metadata")]),
    ("invalid_release_name.json", 0, [(1, "album is not text")]),
    ("empty_artist_name.json", 0, [(1, "no artist")]),
    ("valid_playing_now.json", 0, [(1, "a playing-now notification, not a listen")]),
    ("same_batch_duplicates.json", 3, []),  # duplicates are the store's business
    ("timescale_listenstore_test_listens.json", 5, []),  # listened_at as digit strings
    ("missing_musicbrainz_data.json", 122, []),  # flat records, ISO 8601 times
    ("invalid_recording_mbid.json", 1, []),  # a malformed MBID is ignored, not fatal
])
def test_listenbrainz_json_and_bad_rows(testdata: Path, name: str, kept: int,
                                        rejects: list) -> None:
    rows, got = read("listenbrainz", testdata / LB / name)
    assert len(rows) == kept and got == rejects
    assert all(r["mbid"] is None for r in rows) or name != "invalid_recording_mbid.json"


def test_listenbrainz_parquet_dump(testdata: Path) -> None:
    rows, rejects = read("listenbrainz", testdata / SPARK / "full-dump-1" / "0.parquet")
    assert rejects == [] and len(rows) == 4
    assert rows[0] == {"line": 1, "user": "1", "ts": 1578152311, "artist": "Kiasmos",
                       "title": "Lit", "album": "Kiasmos", "duration_ms": None,
                       "mbid": "7133862a-0fd3-4d1c-9cb6-3be5e051af13", "isrc": None,
                       "ext_id": None}
    mapped, _ = read("listenbrainz", testdata / SPARK / "mapped_listens_subset.parquet")
    assert len(mapped) == 11 and mapped[0]["user"] == "2"  # tz-aware microsecond times


def test_listenbrainz_rejects_other_parquet(testdata: Path) -> None:
    with pytest.raises(BadSource, match="not a ListenBrainz listen dump"):
        read("listenbrainz", testdata / SPARK / "recording_tag.parquet")


@pytest.mark.parametrize(("name", "kept", "rejects"), [
    ("librefm.csv", 3, []),  # UTF-7 comment lines, header
    ("librefm_via_maloja.csv", 3, []),
    ("librefm_with_comments.csv", 3, []),  # '#' comments, userid column
    ("librefm_no_album_column.csv", 2, []),
    ("librefm_no_header.csv", 0, [(1, "5 fields where the header has 4"),
                                  (2, "5 fields where the header has 4"),
                                  (3, "7 fields where the header has 4"),
                                  (4, "5 fields where the header has 4"),
                                  (5, "unreadable timestamp 'Goodbye'"),
                                  (6, "8 fields where the header has 4")]),
    ("librefm_loved_tracks_1.json", 3, []),
    ("librefm_loved_tracks_2.json", 3, []),
])
def test_librefm(testdata: Path, name: str, kept: int, rejects: list) -> None:
    rows, got = read("librefm", testdata / LB / name)
    assert len(rows) == kept and got == rejects


def test_librefm_fields(testdata: Path) -> None:
    rows, _ = read("librefm", testdata / LB / "librefm.csv")
    assert rows[0]["artist"] == "The Horrors" and rows[0]["title"] == "New Ice Age"
    assert rows[0]["album"] == "Primary Colours" and rows[0]["ts"] == 1690347960
    assert rows[1]["album"] is None  # an empty album is no album
    with_users, _ = read("librefm", testdata / LB / "librefm_with_comments.csv")
    assert {r["user"] for r in with_users} == {"1"}


def test_lastfm_loved_tracks(testdata: Path) -> None:
    rows, rejects = read("lastfm", testdata / LB / "lastfm_loved_tracks_1.json")
    assert rejects == [] and len(rows) == 5
    assert rows[0]["artist"] == "Ariana Grande" and rows[0]["title"] == "Let Me Love You"
    assert rows[0]["ts"] == 1664461146


def test_lastfm_csv_and_recent_tracks_documented_samples(tmp_path: Path) -> None:
    """No real Last.fm scrobble export in testdata: lastfm-to-csv's format (no header;
    artist, album, track, date in UTC) and the API's user.getRecentTracks JSON, written
    from their documentation."""
    csv_file = tmp_path / "scrobbles.csv"
    csv_file.write_text("Radiohead,OK Computer,Airbag,31 Jan 2021 12:34\n"
                        "Björk,Homogenic,Jóga,01 Feb 2021 08:00\n"
                        "Broken,Row\n", encoding="utf-8")
    rows, rejects = read("lastfm", csv_file)
    assert [(r["artist"], r["title"], r["album"], r["ts"]) for r in rows] == [
        ("Radiohead", "Airbag", "OK Computer", 1612096440),
        ("Björk", "Jóga", "Homogenic", 1612166400)]
    assert rejects == [(3, "2 fields where the header has 4")]
    recent = tmp_path / "recent.json"
    recent.write_text(json.dumps([{"recenttracks": {"@attr": {"user": "rj"}, "track": [
        {"artist": {"mbid": "", "#text": "Radiohead"}, "name": "Airbag",
         "album": {"mbid": "", "#text": "OK Computer"}, "mbid": "",
         "@attr": {"nowplaying": "true"}},
        {"artist": {"mbid": "", "#text": "Radiohead"}, "name": "Airbag",
         "album": {"mbid": "", "#text": "OK Computer"},
         "mbid": "5cbe8f32-1f2b-4b3b-a5c8-8ef3e1bd0f33",
         "date": {"uts": "1612096440", "#text": "31 Jan 2021, 12:34"}}]}}]))
    rows, rejects = read("lastfm", recent)
    assert rejects == [(1, "now playing, not a listen")]
    assert rows[0]["user"] == "rj" and rows[0]["mbid"] == "5cbe8f32-1f2b-4b3b-a5c8-8ef3e1bd0f33"


def test_maloja(testdata: Path) -> None:
    rows, rejects = read("maloja", testdata / LB / "maloja.json")
    assert rejects == [] and [r["title"] for r in rows] == ["Not Now, Jesus",
                                                             "Old Friend; The Sea"]
    assert rows[0]["album"] == "To Cy & Lee: Instrumentals Vol. 1"
    assert rows[0]["duration_ms"] == 220_000
    rows, rejects = read("maloja", testdata / LB / "maloja_malformed.json")
    assert rows == [] and rejects == [(1, "no artist"), (2, "no artist"), (3, "no artist")]


def test_panoscrobbler(testdata: Path) -> None:
    rows, rejects = read("panoscrobbler", testdata / LB / "panoscrobbler.jsonl")
    assert rejects == [] and len(rows) == 2
    assert rows[1]["artist"] == "Rick Astley" and rows[1]["ts"] == 1762874400
    assert rows[0]["duration_ms"] == 346958


@pytest.mark.parametrize(("name", "kept"), [
    ("spotify_streaming_2023.json", 4),
    ("spotify_streaming_endsong_0.json", 4),
    ("spotify_skipped_tracks.json", 1),
])
def test_spotify_extended_history(testdata: Path, name: str, kept: int) -> None:
    rows, rejects = read("spotify-history", testdata / LB / name)
    records = json.loads((testdata / LB / name).read_text())
    expected = [(n, "no ms_played: a listen cannot be told from a skip") if "ms_played" not in r
                else (n, "played under 30 s")
                for n, r in enumerate(records, start=1) if r.get("ms_played", 0) < 30_000]
    assert len(rows) == kept == len(records) - len(expected)
    assert rejects == expected
    assert all(r["ext_id"] and len(r["ext_id"]) == 22 for r in rows)


def test_spotify_listen_dated_at_its_start(testdata: Path) -> None:
    rows, _ = read("spotify-history", testdata / LB / "spotify_streaming_endsong_0.json")
    got = next(r for r in rows if r["title"] == "Got To Hurry")
    assert got["ts"] == 1363257865 - 155  # ts 2013-03-14T10:44:25Z minus 154.9 s played


def test_spotify_account_history_documented_sample(tmp_path: Path) -> None:
    """No real StreamingHistory*.json in testdata: written from Spotify's description of
    the account data export (endTime, artistName, trackName, msPlayed)."""
    path = tmp_path / "StreamingHistory_music_0.json"
    path.write_text(json.dumps([
        {"endTime": "2023-01-01 12:34", "artistName": "Bonobo", "trackName": "Kerala",
         "msPlayed": 240000},
        {"endTime": "2023-01-01 12:35", "artistName": "Bonobo", "trackName": "Cirrus",
         "msPlayed": 1200}]))
    rows, rejects = read("spotify-history", path)
    assert [(r["title"], r["ts"]) for r in rows] == [("Kerala", 1672576440 - 240)]
    assert rejects == [(2, "played under 30 s")]


def test_spinitron(testdata: Path) -> None:
    rows, rejects = read("spinitron", testdata / LB / "spinitron_sample.csv", user="WXYZ")
    assert [r["title"] for r in rows] == ["People Just Want To Dream", "Jungle", "Hello Music"]
    assert rows[0]["ts"] == 1725523387 and rows[0]["user"] == "WXYZ"  # -0500 applied
    assert rejects == [(12, "unreadable timestamp 'INVALID-TIMESTAMP'"), (13, "no artist")]


def test_scrobbler_log(testdata: Path) -> None:
    rows, rejects = read("scrobbler-log", testdata / LB / ".scrobbler.log")
    assert [r["title"] for r in rows] == ["Come Together", "YELLOW ALERT", "Unknown Song.mp3"]
    assert rows[0]["mbid"] == "d5e4fb56-e457-4684-aa31-63ce70ee5a8c"
    assert rows[1]["mbid"] is None  # 'never-gonna-give-you-up' is no MBID
    assert rows[0]["duration_ms"] == 259_000
    assert rejects == [(8, "skipped (rating S), not a listen")]


def test_table_with_mapping(tmp_path: Path) -> None:
    path = tmp_path / "plays.tsv"
    path.write_text("played\tby\tsong\tisrc\n"
                    "2024-03-01T10:00:00Z\tNina Simone\tFeeling Good\tGBUM71029604\n"
                    "yesterday\tNina Simone\tSinnerman\t\n", encoding="utf-8")
    rows, rejects = read("table", path, columns={"played": "ts", "by": "artist",
                                                  "song": "title"})
    assert [(r["title"], r["isrc"], r["ts"]) for r in rows] == [
        ("Feeling Good", "GBUM71029604", 1709287200)]
    assert rejects == [(3, "unreadable timestamp 'yesterday'")]
    with pytest.raises(BadSource, match="no column for title"):
        read("table", path, columns={"played": "ts", "by": "artist"})
    with pytest.raises(BadQuery, match="unknown listen field"):
        reader_for("table", {"played": "when"})


def test_table_parquet_with_timestamps(tmp_path: Path, monkeypatch) -> None:
    import time

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "plays.parquet"
    pq.write_table(pa.table({
        "played_at": pa.array(np.array(["2024-03-01T10:00:00"], "datetime64[s]")),
        "artist": ["Nina Simone"], "title": ["Feeling Good"], "plays_user": ["x"]}), path)
    monkeypatch.setenv("TZ", "America/New_York")  # a zone-less time is UTC wherever we run
    time.tzset()
    try:
        rows, rejects = read("table", path, columns={"played_at": "ts", "plays_user": "user"})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert rejects == [] and rows[0]["ts"] == 1709287200 and rows[0]["user"] == "x"


def test_unknown_format() -> None:
    with pytest.raises(BadQuery, match="unknown listens format"):
        reader_for("napster")
