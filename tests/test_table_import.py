from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.export import export_catalog, flat_rows
from musicark.catalog.search import lookup

CSV = """\
Track URI,Title,Artist,Album,Year,ISRC,Pop,Plays,Mood,Explicit,Markets
t1,"Café del Mar, Pt. 1",Energy 52,Café del Mar,1993-01-01,NLA109300001,55,1200000,chill,no,DE;NL
t2,Second,Energy 52;Guest,Café del Mar,1993-01-01,NLA109300002,12,,calm,yes,DE;NL
t3,Bad Pop,Someone,Other,2001,NLA109300003,101,5,x,no,US
t4,Bad Bool,Someone,Other,2001,NLA109300004,5,5,x,maybe,US
t5,"Broken ""quote",Someone,Other,2001,NLA109300005,5,5,x,no,US,extra-field
"""

MAPPING = {"columns": {"Track URI": "track_id", "Title": "name", "Artist": "artists",
                       "Album": "album", "Year": "release_date", "ISRC": "isrc",
                       "Pop": "popularity", "Plays": "listens", "Explicit": "explicit",
                       "Markets": "markets"}}


def test_csv_with_mapping_bad_rows_and_extra(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "plays.csv"
    src.write_text(CSV, encoding="utf-8")
    report = import_source(archive, "table", src, mapping=MAPPING)
    assert report.counts["tracks"] == 2
    assert [(b.line, b.reason) for b in report.bad_row_samples] == [
        (4, "popularity: '101' is outside 0-100"),
        (5, "explicit: 'maybe' is not a boolean"),
        (6, "has 12 fields, the header has 11"),
    ]
    rows = list(flat_rows(archive))
    assert rows[0]["name"] == "Café del Mar, Pt. 1"
    assert rows[0]["listens"] == 1_200_000 and rows[1]["listens"] is None
    assert rows[1]["artists"] == ["Energy 52", "Guest"]
    assert rows[0]["extra"] == {"Mood": "chill"}
    assert rows[1]["explicit"] is True
    # One album (same name and first artist), one market list stored once.
    assert archive.conn.execute("SELECT count(*) FROM albums").fetchone()[0] == 1
    assert archive.conn.execute("SELECT count(*) FROM markets").fetchone()[0] == 1
    assert lookup(archive, ["nla109300002"])["nla109300002"]["tracks"][0]["name"] == "Second"


def test_tsv_jsonl_and_parquet(archive: Archive, tmp_path: Path) -> None:
    tsv = tmp_path / "a.tsv"
    tsv.write_text("track_id\tname\tartists\tpopularity\nx1\tTab Song\tA\t3\n", encoding="utf-8")
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(json.dumps({"track_id": "j1", "name": "Json Song", "artists": ["B", "C"],
                                 "popularity": 7, "unknown": [1, 2]}) + "\nnot json\n")
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.table({"track_id": ["p1", "p2"], "name": ["Parquet One", "Parquet Two"],
                             "popularity": [1, 99], "listens": [10, None]}), parquet)
    assert import_source(archive, "table", tsv).counts["tracks"] == 1
    report = import_source(archive, "table", jsonl)
    assert report.counts["tracks"] == 1 and report.bad_row_samples[0].line == 2
    assert import_source(archive, "table", parquet).counts["tracks"] == 2
    names = {r["name"]: r for r in flat_rows(archive)}
    assert names["Json Song"]["artists"] == ["B", "C"]
    assert names["Json Song"]["extra"] == {"unknown": [1, 2]}
    assert names["Parquet Two"]["popularity"] == 99


def test_export_jsonl_and_parquet(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "plays.csv"
    src.write_text(CSV, encoding="utf-8")
    import_source(archive, "table", src, mapping=MAPPING)
    out = tmp_path / "out.parquet"
    assert export_catalog(archive, "parquet", out) == 2
    table = pq.read_table(out)
    assert table.column("isrc").to_pylist() == ["NLA109300001", "NLA109300002"]
    assert table.column("artists").to_pylist()[1] == ["Energy 52", "Guest"]
    out_jsonl = tmp_path / "out.jsonl"
    assert export_catalog(archive, "jsonl", out_jsonl) == 2
    first = json.loads(out_jsonl.read_text(encoding="utf-8").splitlines()[0])
    assert first["album"] == "Café del Mar" and first["markets"] == ["DE", "NL"]


def test_keys_found_again_after_the_cache_drops_them(archive: Archive, tmp_path: Path,
                                                      monkeypatch) -> None:
    """With a tiny cache, albums and artists seen long ago are found in the database."""
    import musicark.catalog.importers.table as table
    import musicark.catalog.keys as keys

    monkeypatch.setattr(keys, "CACHE_SIZE", 8)
    monkeypatch.setattr(table, "JSONL_BATCH", 7)  # many batches, so repeats cross batches
    monkeypatch.setattr(keys.KeyHashes, "RECENT", 4)  # and hashes reach the sorted array
    lines = [json.dumps({"track_id": f"t{i}", "name": f"Song {i}", "album_id": f"al{i % 30}",
                         "album": f"Album {i % 30}", "artist_ids": [f"ar{i % 20}"],
                         "artists": [f"Artist {i % 20}"]}) for i in range(60)]
    src = tmp_path / "repeat.jsonl"
    src.write_text("\n".join(lines) + "\n")
    report = import_source(archive, "table", src)
    assert report.counts == {"tracks": 60, "albums": 30, "artists": 20}
    rows = list(flat_rows(archive))
    assert rows[45]["album_id"] == "al15" and rows[45]["artist_ids"] == ["ar5"]


def test_compressed_inputs(archive: Archive, tmp_path: Path) -> None:
    """.gz, .bz2, .xz and .zst inputs are read transparently (JSONL through line reading)."""
    import bz2
    import gzip
    import lzma

    import zstandard

    rows = "".join(json.dumps({"track_id": f"{i}", "name": f"Song {i}"}) + "\n"
                   for i in range(50)).encode()
    writers = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": lambda b: zstandard.ZstdCompressor().compress(b)}
    for suffix, compress in writers.items():
        src = tmp_path / f"songs.jsonl{suffix}"
        src.write_bytes(compress(rows))
        assert import_source(archive, "table", src, name=suffix).counts["tracks"] == 50


def _artists_of(archive: Archive) -> dict[str, list[tuple[str | None, str | None]]]:
    rows = archive.conn.execute("""
        SELECT t.name, a.name, a.mbid FROM tracks t
          JOIN track_artists ta ON ta.track_rowid = t.rowid
          JOIN artists a ON a.rowid = ta.artist_rowid ORDER BY t.rowid, ta.position""")
    found: dict[str, list[tuple[str | None, str | None]]] = {}
    for track, name, mbid in rows:
        found.setdefault(track, []).append((name, mbid))
    return found


def test_artist_names_and_ids_pair_up_or_the_row_is_bad(archive: Archive,
                                                        tmp_path: Path) -> None:
    """Names without IDs keep every name; IDs that do not pair up with names are bad rows."""
    src = tmp_path / "credits.csv"
    src.write_text(
        "track_id,name,artists,artist_mbids\n"
        "1,No IDs,A;B,\n"
        "2,One ID for two,A;B,11111111-1111-1111-1111-111111111111\n"
        "3,Paired,C;D,22222222-2222-2222-2222-222222222222;"
        "33333333-3333-3333-3333-333333333333\n"
        "4,IDs only,,44444444-4444-4444-4444-444444444444\n", encoding="utf-8")
    report = import_source(archive, "table", src)
    assert [(b.line, b.reason) for b in report.bad_row_samples] == [
        (3, "artists: 2 names but 1 artist_mbids; names and IDs must pair up")]
    found = _artists_of(archive)
    assert found["No IDs"] == [("A", None), ("B", None)]
    assert "One ID for two" not in found
    assert found["Paired"] == [("C", "22222222-2222-2222-2222-222222222222"),
                               ("D", "33333333-3333-3333-3333-333333333333")]
    assert found["IDs only"] == [(None, "44444444-4444-4444-4444-444444444444")]


def test_mixed_rows_in_one_batch_keep_every_artist(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"track_id": "1", "name": "X", "artists": ["A"], "artist_ids": ["id-a"]},
        {"track_id": "2", "name": "Y", "artists": ["A", "B"]},
        {"track_id": "3", "name": "Z", "artists": ["B"], "artist_ids": []},
    ]) + "\n", encoding="utf-8")
    report = import_source(archive, "table", src)
    assert report.bad_rows == 0
    found = _artists_of(archive)
    assert found == {"X": [("A", None)], "Y": [("A", None), ("B", None)], "Z": [("B", None)]}


def test_columns_that_map_to_nothing_are_an_error(archive: Archive, tmp_path: Path) -> None:
    import pytest

    from musicark.errors import BadSource

    src = tmp_path / "plain.csv"
    src.write_text("title,artist\nSong,Someone\n", encoding="utf-8")
    with pytest.raises(BadSource, match=r"no column maps to .*title, artist.*--map"):
        import_source(archive, "table", src)
    assert archive.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0


def test_a_mapped_column_missing_from_the_file_is_an_error(archive: Archive,
                                                           tmp_path: Path) -> None:
    import pytest

    from musicark.errors import BadSource

    src = tmp_path / "plain.csv"
    src.write_text("title,artist\nSong,Someone\n", encoding="utf-8")
    with pytest.raises(BadSource, match="'Title'.*not in the file"):
        import_source(archive, "table", src, mapping={"columns": {"Title": "name",
                                                                  "artist": "artists"}})


def test_rows_without_a_name_are_bad_and_unmapped_columns_reported(archive: Archive,
                                                                  tmp_path: Path) -> None:
    src = tmp_path / "some.csv"
    src.write_text("title,artist,mood\nSong,Someone,calm\n,Nobody,sad\n", encoding="utf-8")
    report = import_source(archive, "table", src,
                           mapping={"columns": {"title": "name", "artist": "artists"}})
    assert report.counts["tracks"] == 1
    assert [(b.line, b.reason) for b in report.bad_row_samples] == [(3, "no track name")]
    assert report.unmapped_columns == ["mood"]
    assert report.as_dict()["unmapped_columns"] == ["mood"]


def test_a_header_that_maps_nothing_is_refused_even_without_rows(archive: Archive,
                                                                 tmp_path: Path) -> None:
    import pytest

    from musicark.errors import BadSource

    src = tmp_path / "empty.csv"
    src.write_text("title,artist\n", encoding="utf-8")
    with pytest.raises(BadSource, match="no column maps"):
        import_source(archive, "table", src)
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"title": ["A"], "popularity": [3]}), parquet)
    with pytest.raises(BadSource, match="no column maps to the track name"):
        import_source(archive, "table", parquet)
