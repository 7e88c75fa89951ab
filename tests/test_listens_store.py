"""Importing listens: storage per item/source/month, identity and duplicates, re-import as a
no-op, atomic files, matching by MBID, ISRC, source id and fuzzy tags, rematch."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.errors import BadSource
from musicark.listens import formats
from musicark.listens.match import match_listens
from musicark.listens.stats import listen_stats, track_listens, unmatched
from musicark.listens.store import import_listens

LB = Path("metadata/listenbrainz/listenbrainz_testdata")
SPARK = Path("metadata/listenbrainz/listenbrainz_spark_testdata")
DUMPS = ["full-dump-1", "incremental-dump-2", "incremental-dump-3", "incremental-dump-5"]

CATALOG = [  # real recordings the test files listen to, with the identifiers they carry
    {"track_id": "t-golden", "name": "Golden Brown", "artists": "The Stranglers",
     "album": "La Folie", "mbid": "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0", "isrc": "",
     "duration_ms": 206000, "popularity": 70},
    {"track_id": "t-california", "name": "California Dreamin'",
     "artists": "The Mamas & The Papas", "album": "If You Can Believe Your Eyes and Ears",
     "mbid": "", "isrc": "USMC16532697", "duration_ms": 162000, "popularity": 75},
    {"track_id": "6pHLEjP6LdsoP31jZDNc6e", "name": "Got To Hurry", "artists": "Yardbirds",
     "album": "For Your Love", "mbid": "", "isrc": "", "duration_ms": 150000,
     "popularity": 20},
    {"track_id": "t-newice", "name": "New Ice Age", "artists": "The Horrors",
     "album": "Primary Colours", "mbid": "", "isrc": "", "duration_ms": 250000,
     "popularity": 40},
    {"track_id": "t-lit", "name": "Lit", "artists": "Kiasmos", "album": "Kiasmos",
     "mbid": "7133862a-0fd3-4d1c-9cb6-3be5e051af13", "isrc": "", "duration_ms": 250000,
     "popularity": 30},
]


def write_catalog(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def catalogued(archive: Archive, tmp_path: Path) -> Archive:
    import_source(archive, "table", write_catalog(tmp_path / "catalog.csv", CATALOG))
    return archive


def track(archive: Archive, ext_id: str) -> int:
    return archive.conn.execute("SELECT rowid FROM tracks WHERE ext_id = ?",
                                (ext_id,)).fetchone()[0]


def links(archive: Archive) -> dict[str, tuple[int, str]]:
    return {title: (rowid, method) for title, rowid, method in archive.conn.execute(
        "SELECT title, track_rowid, method FROM listen_keys WHERE track_rowid IS NOT NULL")}


def test_listenbrainz_export_matched_by_mbid_and_isrc(catalogued: Archive, testdata: Path
                                                      ) -> None:
    report = import_listens(catalogued, "listenbrainz",
                            [testdata / LB / "listenbrainz_listens.jsonl"])
    assert report["listens"] == 2 and report["rejected"] == 0
    assert report["match"]["matched"] == {"mbid": 1, "isrc": 1}
    assert links(catalogued) == {
        "Golden Brown": (track(catalogued, "t-golden"), "mbid"),
        "California Dreamin'": (track(catalogued, "t-california"), "isrc")}
    assert track_listens(catalogued, track(catalogued, "t-golden")) == {
        "total": 1, "sources": [{"source": "listenbrainz", "listens": 1,
                                 "first_month": 202506, "last_month": 202506}]}


def test_spotify_matched_by_source_track_id_and_librefm_by_tags(catalogued: Archive,
                                                                 testdata: Path) -> None:
    import_listens(catalogued, "spotify-history",
                   [testdata / LB / "spotify_streaming_endsong_0.json"])
    import_listens(catalogued, "librefm", [testdata / LB / "librefm.csv"])
    got = links(catalogued)
    assert got["Got To Hurry"] == (track(catalogued, "6pHLEjP6LdsoP31jZDNc6e"), "ext_id")
    assert got["New Ice Age"] == (track(catalogued, "t-newice"), "fuzzy")
    assert len(got) == 2  # nothing else in those files is in the catalog


def test_dumps_duplicates_counted_once_and_reimport_is_a_no_op(catalogued: Archive,
                                                                testdata: Path) -> None:
    """The incremental dump 5 repeats listens of the full dump: by identity (user, time,
    track) the 115 rows of these dumps hold 85 distinct listens."""
    dumps = [testdata / SPARK / d for d in DUMPS]
    first = import_listens(catalogued, "listenbrainz", dumps, source="lb")
    assert (first["rows"], first["listens"], first["duplicates"]) == (115, 85, 30)
    assert first["imported_files"] == 10
    total = lambda: catalogued.conn.execute(  # noqa: E731
        "SELECT sum(listens), count(*) FROM listen_counts").fetchone()
    before = total()
    assert before[0] == 85
    again = import_listens(catalogued, "listenbrainz", dumps, source="lb")
    assert again["imported_files"] == 0 and again["skipped_files"] == 10
    assert total() == before
    # the same listens in a file with other bytes (a second export) still count once
    copy = catalogued.path.parent / "copy-of-dump.parquet"
    import pyarrow.parquet as pq

    table = pq.read_table(testdata / SPARK / "full-dump-1" / "3.parquet")
    pq.write_table(table, copy, compression="zstd")
    third = import_listens(catalogued, "listenbrainz", [copy], source="lb")
    assert third["imported_files"] == 1 and third["listens"] == 0
    assert third["duplicates"] == table.num_rows
    assert total() == before
    kiasmos = track_listens(catalogued, track(catalogued, "t-lit"))
    assert kiasmos["total"] == 1


def test_provenance_holds_raw_file_hashes(catalogued: Archive, testdata: Path) -> None:
    import hashlib

    path = testdata / LB / "librefm.csv"
    import_listens(catalogued, "librefm", [path])
    sha, size, fmt = catalogued.conn.execute(
        "SELECT sha256, size, format FROM listen_files").fetchone()
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest() and size == path.stat().st_size
    assert fmt == "librefm"


def test_bad_rows_reported_with_line_and_reason(catalogued: Archive, testdata: Path) -> None:
    seen = []
    report = import_listens(catalogued, "listenbrainz",
                            [testdata / LB / "listenbrainz_mixed_validity.jsonl"],
                            on_reject=lambda path, r: seen.append((path.name, r.line,
                                                                   r.reason)))
    assert report["listens"] == 3 and report["rejected"] == 2
    assert report["files"][0]["rejects"] == [{"line": 2, "reason": "no artist"},
                                             {"line": 4, "reason": "no title"}]
    assert seen == [("listenbrainz_mixed_validity.jsonl", 2, "no artist"),
                    ("listenbrainz_mixed_validity.jsonl", 4, "no title")]
    stored = catalogued.conn.execute("SELECT report FROM listen_files").fetchone()[0]
    assert '"no artist"' in stored


def test_same_time_different_tracks_are_different_listens(catalogued: Archive,
                                                          testdata: Path) -> None:
    names = ["same_timestamp_diff_track_valid_single.json",
             "same_timestamp_diff_track_valid_single_2.json",
             "same_timestamp_diff_track_valid_single_3.json", "same_batch_duplicates.json"]
    report = import_listens(catalogued, "listenbrainz", [testdata / LB / n for n in names])
    assert report["rows"] == 6
    distinct = {(r["artist"], r["title"]) for n in names for b in
                formats.reader_for("listenbrainz")(testdata / LB / n)
                for r in b.table.to_pylist() if r["ts"] == 1486449409}
    assert report["listens"] == len(distinct) + 1  # plus one of the three same-batch copies
    assert report["duplicates"] == 2


def test_a_failed_file_leaves_nothing_and_the_import_continues(
        catalogued: Archive, testdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = formats.FORMATS["listenbrainz"]

    def dies_after_first_batch(path, **kw):
        for batch in real(path, **kw):
            yield batch
            raise KeyboardInterrupt

    monkeypatch.setitem(formats.FORMATS, "listenbrainz", dies_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        import_listens(catalogued, "listenbrainz",
                       [testdata / LB / "listenbrainz_listens.jsonl"])
    conn = catalogued.conn
    assert conn.execute("SELECT count(*) FROM listen_counts").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM listen_files").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM listen_seen").fetchone()[0] == 0
    monkeypatch.setitem(formats.FORMATS, "listenbrainz", real)
    report = import_listens(catalogued, "listenbrainz",
                            [testdata / LB / "listenbrainz_listens.jsonl"])
    assert report["listens"] == 2 and report["duplicates"] == 0


def test_unmatched_kept_then_rematched_after_a_catalog_import(catalogued: Archive,
                                                              testdata: Path,
                                                              tmp_path: Path) -> None:
    import_listens(catalogued, "maloja", [testdata / LB / "maloja.json"])
    assert [u["title"] for u in unmatched(catalogued)] == ["Not Now, Jesus",
                                                           "Old Friend; The Sea"]
    more = [{**CATALOG[0], "track_id": "t-jesus", "name": "Not Now, Jesus",
             "artists": "Alabaster DePlume", "album": "To Cy & Lee: Instrumentals Vol. 1",
             "mbid": "", "duration_ms": 221000, "popularity": 10}]
    import_source(catalogued, "table", write_catalog(tmp_path / "more.csv", more),
                  name="more")
    report = match_listens(catalogued, retry=True)
    assert report["matched"] == {"fuzzy": 1} and report["unmatched"] == 1
    assert [u["title"] for u in unmatched(catalogued)] == ["Old Friend; The Sea"]
    stats = listen_stats(catalogued)
    assert stats["matched"]["listens_matched"] == 1 and stats["matched"]["listens_total"] == 2
    assert stats["top_tracks"][0]["name"] == "Not Now, Jesus"
    assert stats["top_artists"][0]["name"] == "Alabaster DePlume"
    assert stats["months"] == [{"month": "2025-10", "source": "maloja", "listens": 2}]


def test_missing_file_is_one_clear_error(archive: Archive, tmp_path: Path) -> None:
    with pytest.raises(BadSource, match="no such file"):
        import_listens(archive, "maloja", [tmp_path / "nope.json"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadSource, match="not JSON"):
        import_listens(archive, "maloja", [bad])


def test_directory_of_files(catalogued: Archive, testdata: Path, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / "listens" / "2025").mkdir(parents=True)
    shutil.copy(testdata / LB / "listenbrainz_listens.jsonl",
                folder / "listens" / "2025" / "6.jsonl")
    report = import_listens(catalogued, "listenbrainz", [folder])
    assert report["imported_files"] == 1 and report["listens"] == 2


def test_a_file_of_the_wrong_format_stores_nothing(catalogued: Archive, testdata: Path
                                                   ) -> None:
    """A ListenBrainz export read as Pano Scrobbler has not one valid row: nothing is kept,
    so the right format can import it afterwards."""
    path = testdata / LB / "listenbrainz_listens.jsonl"
    wrong = import_listens(catalogued, "panoscrobbler", [path])
    assert wrong["files"][0]["status"] == "nothing valid" and wrong["rejected"] == 2
    assert wrong["invalid_files"] == [str(path)]
    assert catalogued.conn.execute("SELECT count(*) FROM listen_files").fetchone()[0] == 0
    right = import_listens(catalogued, "listenbrainz", [path])
    assert right["listens"] == 2


def test_a_directory_contributes_the_files_its_format_reads(catalogued: Archive,
                                                            testdata: Path) -> None:
    from musicark.listens.formats import expand

    files = expand([testdata / LB], "scrobbler-log")
    assert [f.name for f in files] == [".scrobbler.log"]
    assert all(f.suffix == ".csv" for f in expand([testdata / LB], "spinitron"))


def test_matching_in_worker_processes_gives_the_same_links(catalogued: Archive,
                                                           testdata: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from musicark.listens import match as listens_match

    monkeypatch.setattr(listens_match, "CHUNK", 2)  # several chunks from a few items
    for fmt, name in (("listenbrainz", "listenbrainz_listens.jsonl"), ("librefm", "librefm.csv"),
                      ("spotify-history", "spotify_streaming_endsong_0.json")):
        import_listens(catalogued, fmt, [testdata / LB / name], match=False)
    alone = match_listens(catalogued)
    single = links(catalogued)
    catalogued.conn.execute("UPDATE listen_keys SET track_rowid = NULL, method = NULL, "
                            "matched_at = NULL")
    pooled = match_listens(catalogued, workers=2)
    assert links(catalogued) == single and len(single) == 4
    assert pooled["matched"] == alone["matched"] == {"mbid": 1, "isrc": 1, "ext_id": 1,
                                                     "fuzzy": 1}


def test_forget_a_source_then_import_its_files_again(catalogued: Archive, testdata: Path
                                                    ) -> None:
    """A source imported wrongly is forgotten whole; the other sources keep every count, and
    its files import again instead of being skipped as already imported."""
    from musicark.errors import BadQuery
    from musicark.listens.forget import forget_source

    dumps = [testdata / SPARK / d for d in DUMPS]
    import_listens(catalogued, "listenbrainz", dumps, source="lb")
    export = [testdata / LB / "listenbrainz_listens.jsonl"]
    import_listens(catalogued, "listenbrainz", export, source="mine")
    counts = lambda source: catalogued.conn.execute(  # noqa: E731
        "SELECT coalesce(sum(c.listens), 0), count(DISTINCT c.key_id) FROM listen_counts c "
        "JOIN listen_sources s ON s.id = c.source_id WHERE s.name = ?", (source,)).fetchone()
    kept = counts("lb")
    report = forget_source(catalogued, "mine")
    assert (report["files"], report["listens"]) == (1, 2)
    assert counts("lb") == kept and counts("mine") == (0, 0)
    orphans = catalogued.conn.execute(
        "SELECT count(*) FROM listen_keys k WHERE NOT EXISTS "
        "(SELECT 1 FROM listen_counts c WHERE c.key_id = k.id)").fetchone()[0]
    assert orphans == 0
    again = import_listens(catalogued, "listenbrainz", export, source="mine")
    assert again["imported_files"] == 1 and again["listens"] == 2
    with pytest.raises(BadQuery, match="no listens source 'nope'.*lb, mine"):
        forget_source(catalogued, "nope")
