"""The columnar paths (Parquet dumps, JSONL through pyarrow) give what the row path gives;
the vectorized string hash is a real hash of the bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from musicark.archive import Archive
from musicark.listens.formats import listenbrainz
from musicark.listens.identity import BASE, GOLDEN, hash_strings, mix
from musicark.listens.records import checked
from musicark.listens.store import import_listens


def reference_hash(text: str) -> int:
    data = text.encode("utf-8")
    h = sum(b * pow(BASE, j, 1 << 64) for j, b in enumerate(data)) % (1 << 64)
    return int(mix(np.array([h ^ (len(data) * int(GOLDEN)) % (1 << 64)], np.uint64))[0])


def test_hash_strings_matches_the_definition_on_slices_and_unicode() -> None:
    values = ["", "a", "Golden Brown", "Björk – Jóga", "日本語", "a" * 300, "", "b"]
    arr = pa.array(["pad", *values, "pad"]).slice(1, len(values))
    got = hash_strings(arr).tolist()
    assert got == [reference_hash(v) for v in values]
    assert len(set(got)) == len(set(values))
    assert hash_strings(pa.array(values, pa.large_string())).tolist() == got


def _rows(batches) -> tuple[list[dict], list[tuple[int, str]]]:
    rows, rejects = [], []
    for batch in batches:
        batch = checked(batch)
        rows += batch.table.to_pylist()
        rejects += [(r.line, r.reason) for r in batch.rejects]
    return rows, rejects


def _listen(ts, artist="Artist", title="Title", **info) -> dict:
    meta = {"artist_name": artist, "track_name": title, "release_name": "Album"}
    if info:
        meta["additional_info"] = info
    return {"listened_at": ts, "track_metadata": meta}


def test_jsonl_columnar_equals_the_row_path(tmp_path: Path, monkeypatch) -> None:
    good = 1_700_000_000
    listens = [
        _listen(good, isrc="gb-aye-81-00053", spotify_id="spotify:track:2AX5E86cn9n2dgioZEjirI",
                duration_ms=206760.4, recording_mbid=" C7D0BF6E-B2AA-4FFA-BDED-2448415B39B0 "),
        _listen(good + 1, artist=""),
        _listen(good + 2, title="\u0000Fade"),
        _listen(1486449409000000000),
        _listen(100),
        _listen(good + 3, tags=["t"] * 51),
        _listen(good + 4, tags=["x" * 65]),
        _listen(good + 5, padding="p" * 11_000),
        _listen(good + 6, artist="  Spaced  ", duration=222, recording_mbid="not a uuid"),
        _listen(good + 7, artist="a" * 1025),
        {"listened_at": good + 8, "user_name": "rob", "track_metadata": {
            "artist_name": "X", "track_name": "Y",
            "mbid_mapping": {"recording_mbid": "20ddea3a-1ad2-4036-9ca7-5f3383ad31c1"}}},
        {"listened_at": good + 9, "user_name": "", "track_metadata": {
            "artist_name": "X", "track_name": "Z", "mbid_mapping": {"recording_mbid": ""},
            "additional_info": {"recording_mbid": "20ddea3a-1ad2-4036-9ca7-5f3383ad31c1",
                                "spotify_id": "",
                                "origin_url": "https://open.spotify.com/track/"
                                              "4s6LhHAV5SEsOV0lC2tjvJ"}}},
    ]
    path = tmp_path / "listens.jsonl"
    path.write_bytes(b"".join(json.dumps(x).encode() + b"\n" for x in listens))
    fast = listenbrainz._jsonl_columnar(path.read_bytes(), 1, "me")
    assert fast is not None and not fast.checked
    fast_rows, fast_rejects = _rows([fast])
    monkeypatch.setattr(listenbrainz, "_jsonl_columnar", lambda data, first, user: None)
    slow_rows, slow_rejects = _rows(listenbrainz.read_jsonl(path, user="me"))
    assert fast_rejects == slow_rejects == [
        (2, "no artist"), (3, "NUL character in title"), (4, "timestamp in nanoseconds"),
        (5, "timestamp before 2002"), (6, "more than 50 tags"),
        (7, "tag longer than 64 characters"), (8, "listen larger than 10,240 bytes"),
        (10, "artist longer than 1024 characters")]
    assert fast_rows == slow_rows
    assert slow_rows[0]["isrc"] == "GBAYE8100053" and slow_rows[0]["duration_ms"] == 206760
    assert slow_rows[0]["mbid"] == "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
    assert slow_rows[0]["ext_id"] == "2AX5E86cn9n2dgioZEjirI"
    assert slow_rows[1]["artist"] == "Spaced" and slow_rows[1]["mbid"] is None
    assert slow_rows[1]["duration_ms"] == 222_000
    assert slow_rows[2]["user"] == "rob" and slow_rows[0]["user"] == "me"
    assert slow_rows[3]["user"] == "me" and slow_rows[3]["ext_id"] == "4s6LhHAV5SEsOV0lC2tjvJ"
    assert slow_rows[3]["mbid"] == "20ddea3a-1ad2-4036-9ca7-5f3383ad31c1"


def test_jsonl_chunks_keep_line_numbers(tmp_path: Path, monkeypatch) -> None:
    """Chunks of whole lines, a bad chunk read row by row, line numbers across chunks."""
    monkeypatch.setattr(listenbrainz, "JSONL_CHUNK_BYTES", 300)
    lines = [json.dumps(_listen(1_700_000_000 + i)) for i in range(12)]
    lines[7] = lines[7].replace("1700000007", "NaN")
    lines[10] = lines[10].replace('"Artist"', '""')
    path = tmp_path / "chunks.jsonl"
    path.write_text("\n".join(lines))  # no final newline
    rows, rejects = _rows(listenbrainz.read_jsonl(path))
    assert rejects == [(8, "timestamp is NaN or infinite"), (11, "no artist")]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 12]
    assert [r["ts"] - 1_700_000_000 for r in rows] == [0, 1, 2, 3, 4, 5, 6, 8, 9, 11]


@pytest.mark.parametrize("text", [
    '{"listened_at": NaN, "track_metadata": {"artist_name": "a", "track_name": "b"}}\n',
    '{"listened_at": "1700000000", "track_metadata": {"artist_name": "a", "track_name": "b"}}\n',
    '{"listened_at": 1700000000, "artist_name": "a", "recording_name": "b"}\n',
    '{"listened_at": 1700000000, "track_metadata": {"artist_name": "a", "track_name": "b"}}\n\n',
])
def test_jsonl_the_columnar_path_steps_aside_when_only_rows_are_exact(tmp_path: Path,
                                                                     text: str) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(text)
    assert listenbrainz._jsonl_columnar(path.read_bytes(), 1, "") is None
    rows, rejects = _rows(listenbrainz.read_jsonl(path))
    assert len(rows) + len(rejects) == 1


def test_parquet_bad_rows_reported_by_line(archive: Archive, tmp_path: Path) -> None:
    ts = np.array(["2021-01-01T00:00:00", "2021-01-01T00:01:00", "1999-05-01T00:00:00",
                   "2021-01-01T00:02:00", "2021-01-01T00:03:00"], "datetime64[ns]")
    table = pa.table({
        "listened_at": pa.array(ts), "user_id": pa.array([1, 1, 1, 2, 2]),
        "artist_name": ["A", "", "A", "B\x00", "B"],
        "recording_name": ["T", "T", "T", "U", "U"],
        "release_name": [None, None, None, None, "R"],
        "recording_mbid": [None] * 5,
    })
    path = tmp_path / "dump.parquet"
    pq.write_table(table, path)
    seen = []
    report = import_listens(archive, "listenbrainz", [path],
                            on_reject=lambda p, r: seen.append((r.line, r.reason)))
    assert seen == [(2, "no artist"), (3, "timestamp before 2002"),
                    (4, "NUL character in artist")]
    assert report["listens"] == 2 and report["rows"] == 2


def test_identity_and_item_hashes_agree_between_the_paths(archive: Archive, tmp_path: Path
                                                          ) -> None:
    """The same listen read columnar and row by row is one listen; the same track listened
    to later, read the other way, is the same listened item."""
    listen = _listen(1_700_000_000, recording_mbid="not-a-uuid", isrc="bad")
    later = _listen(1_700_000_100, recording_mbid="not-a-uuid", isrc="bad")
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    one.write_text(json.dumps(listen) + "\n")
    two.write_text(json.dumps(listen) + "\n\n" + json.dumps(later) + "\n")  # row by row
    assert listenbrainz._jsonl_columnar(one.read_bytes(), 1, "") is not None
    assert listenbrainz._jsonl_columnar(two.read_bytes(), 1, "") is None
    first = import_listens(archive, "listenbrainz", [one])
    second = import_listens(archive, "listenbrainz", [two])
    assert first["listens"] == 1 and second["duplicates"] == 1 and second["listens"] == 1
    assert archive.conn.execute("SELECT count(*) FROM listen_keys").fetchone()[0] == 1
