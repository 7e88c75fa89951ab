"""Listens import on input nobody meant to give it: odd encodings, absurd nesting, empty
files, FIFOs, unwritable report paths, two imports of one file at once. Each gets one clear
error or a per-line reject, never an internal error, and nothing is recorded wrongly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from musicark.archive import Archive
from musicark.cli import app
from musicark.errors import BadSource
from musicark.listens import store
from musicark.listens.formats import reader_for
from musicark.listens.store import import_listens

LB = Path("metadata/listenbrainz/listenbrainz_testdata")
DEEP = "[" * 100_000 + "]" * 100_000


def run(archive: Archive, *args: str):
    return CliRunner().invoke(app, [*args, "--archive", str(archive.path)],
                              prog_name="musicark")


def listen_line(artist: bytes, ts: int = 1_700_000_000) -> bytes:
    return (b'{"listened_at": %d, "track_metadata": {"artist_name": "' % ts + artist
            + b'", "track_name": "Hyperballad"}}\n')


def test_latin1_line_in_jsonl_is_rejected_not_an_internal_error(archive: Archive,
                                                                tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"  # Björk in Latin-1: pyarrow's reader let it through
    path.write_bytes(listen_line(b"Bj\xf6rk") + listen_line(b"Bjork", 1_700_000_100))
    report = import_listens(archive, "listenbrainz", [path], match=False)
    assert report["listens"] == 1
    assert report["files"][0]["rejects"] == [{"line": 1, "reason": "not UTF-8 text"}]


@pytest.mark.parametrize("fmt", ["listenbrainz", "lastfm", "maloja", "spotify-history"])
def test_json_nested_too_deeply_is_one_clear_error(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(BadSource, match="nested too deeply"):
        list(reader_for(fmt)(path))


def test_jsonl_line_nested_too_deeply_is_a_rejected_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(DEEP.encode() + b"\n" + listen_line(b"Bjork"))
    batches = list(reader_for("listenbrainz")(path))
    assert [(r.line, r.reason) for b in batches for r in b.rejects] == [(1, "not JSON")]
    assert sum(len(b.table) for b in batches) == 1


@pytest.mark.parametrize(("fmt", "good"), [
    ("librefm", "1700000000,Kiasmos,Lit,Kiasmos\n"),
    ("spinitron", "Date-time,Artist,Song\n2023-11-14T22:13:20+00:00,Kiasmos,Lit\n")])
def test_csv_field_over_the_csv_limit_rejects_that_line(fmt: str, good: str,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(good + '"' + "x" * 200_000 + '",a,b\n')
    batches = list(reader_for(fmt)(path))
    reasons = [r.reason for b in batches for r in b.rejects]
    assert "not a CSV line (a field too long or badly quoted)" in reasons


def test_empty_files_are_reported_not_recorded(archive: Archive, tmp_path: Path,
                                               testdata: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"")
    (tmp_path / "b.json").write_bytes(b"")
    first = import_listens(archive, "listenbrainz", [tmp_path / "a.jsonl"], match=False)
    assert first["files"][0]["status"] == "empty"
    assert first["invalid_files"] == [str(tmp_path / "a.jsonl")]
    # another empty file (same SHA-256 as every empty file) is not "already imported"
    second = import_listens(archive, "maloja", [tmp_path / "b.json"], match=False)
    assert second["files"][0]["status"] == "empty"
    assert archive.conn.execute("SELECT count(*) FROM listen_files").fetchone()[0] == 0


def test_a_fifo_is_refused_as_not_a_regular_file(archive: Archive, tmp_path: Path) -> None:
    fifo = tmp_path / "listens.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(BadSource, match="not a regular file"):
        import_listens(archive, "listenbrainz", [fifo], match=False)


def test_a_fifo_inside_a_folder_is_refused_not_skipped(archive: Archive,
                                                      tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(listen_line(b"Bjork"))
    os.mkfifo(tmp_path / "b.jsonl")
    with pytest.raises(BadSource, match=r"b.jsonl: not a regular file \(FIFO\)"):
        import_listens(archive, "listenbrainz", [tmp_path], match=False)
    assert archive.conn.execute("SELECT count(*) FROM listen_files").fetchone()[0] == 0


def test_same_file_imported_by_two_processes_at_once(archive: Archive, testdata: Path,
                                                     monkeypatch) -> None:
    """The second import hashed the file before the first committed: it must find the
    file imported once it holds the lock, not fail on the unique SHA-256."""
    path = testdata / LB / "listenbrainz_listens.jsonl"
    real_sha = store.file_sha256

    def racing_sha(p: Path) -> tuple[str, int]:
        result = real_sha(p)
        monkeypatch.setattr(store, "file_sha256", real_sha)
        other = Archive.open(archive.path)  # the other process, committing meanwhile
        try:
            import_listens(other, "listenbrainz", [p], match=False)
        finally:
            other.close()
        return result

    monkeypatch.setattr(store, "file_sha256", racing_sha)
    report = import_listens(archive, "listenbrainz", [path], match=False)
    assert report["files"][0]["status"] == "already imported"
    assert archive.conn.execute("SELECT count(*) FROM listen_files").fetchone()[0] == 1


def test_unwritable_rejects_path_and_absurd_top_are_clear_errors(archive: Archive,
                                                                 testdata: Path,
                                                                 tmp_path: Path) -> None:
    src = str(testdata / LB / "listenbrainz_listens.jsonl")
    result = run(archive, "listens", "import", "-f", "listenbrainz", "--no-match",
                 "--rejects", str(tmp_path), src)
    assert result.exit_code == 2 and "cannot write" in result.stderr
    assert "internal error" not in result.output
    top = run(archive, "listens", "stats", "--top", str(10 ** 20))
    assert top.exit_code == 2 and "internal error" not in top.output
    assert json.loads(run(archive, "listens", "stats", "--json").stdout)["sources"] == []


@pytest.mark.parametrize(("fmt", "name"), [("listenbrainz", "listenbrainz_listens.jsonl"),
                                           ("panoscrobbler", "panoscrobbler.jsonl")])
def test_utf16_jsonl_is_one_clear_error_and_a_utf8_bom_is_skipped(
        testdata: Path, tmp_path: Path, fmt: str, name: str) -> None:
    """Cut at b'\\n', UTF-16 garbled every line after the first (half the listens were
    rejected as 'not JSON'); a UTF-8 BOM cost panoscrobbler its first listen."""
    text = (testdata / LB / name).read_text(encoding="utf-8")
    utf16 = tmp_path / f"utf16-{name}"
    utf16.write_text(text, encoding="utf-16")
    with pytest.raises(BadSource, match="UTF-16 or UTF-32 text"):
        list(reader_for(fmt)(utf16))
    bom = tmp_path / f"bom-{name}"
    bom.write_text(text, encoding="utf-8-sig")

    def rows(path: Path) -> tuple[int, int]:
        batches = list(reader_for(fmt)(path))
        return sum(len(b.table) for b in batches), sum(len(b.rejects) for b in batches)

    assert rows(bom) == rows(testdata / LB / name)


def test_lastfm_json_with_odd_types_is_one_clear_error_or_a_reject(tmp_path: Path) -> None:
    """Found by mutating the real loved-tracks export: '@attr' or 'lovedtracks' of the
    wrong JSON type raised AttributeError/TypeError (internal errors)."""
    path = tmp_path / "lastfm.json"
    for page, message in (({"lovedtracks": "x"}, "lovedtracks is not an object"),
                          ({"lovedtracks": {"track": 5}}, "lovedtracks.track is not a list")):
        path.write_text(json.dumps(page))
        with pytest.raises(BadSource, match=message):
            list(reader_for("lastfm")(path))
    path.write_text(json.dumps({"lovedtracks": {"@attr": "u", "track": [
        {"@attr": 7, "name": "Lit", "artist": {"name": "Kiasmos"}, "date": {"uts": "1700000000"}}
    ]}}))
    rows = [r for b in reader_for("lastfm")(path) for r in b.table.to_pylist()]
    assert [r["title"] for r in rows] == ["Lit"]


def test_listenbrainz_json_with_an_integer_past_64_bits(tmp_path: Path) -> None:
    """orjson (used to measure a listen) refuses integers past 64 bits: TypeError."""
    path = tmp_path / "listens.json"
    path.write_text(json.dumps([
        {"listened_at": 2 ** 70, "track_metadata": {"artist_name": "A", "track_name": "T"}},
        {"listened_at": 1_700_000_000, "track_metadata": {"artist_name": "A",
                                                          "track_name": "T", "x": 2 ** 70}}]))
    batches = list(reader_for("listenbrainz")(path))
    assert sum(len(b.rejects) for b in batches) + sum(len(b.table) for b in batches) == 2


def test_parquet_dump_with_text_columns_of_other_types(tmp_path: Path) -> None:
    """A list column crashed ParquetFile (KeyError); bytes that are not UTF-8 crashed the
    store's hashing (ArrowInvalid). Bytes that are UTF-8, and numbers, are read as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def dump(name: str, artist: pa.Array) -> Path:
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"listened_at": pa.array([1_700_000_000] * len(artist)),
                                 "artist_name": artist,
                                 "recording_name": pa.array(["Lit"] * len(artist))}), path)
        return path

    read = reader_for("listenbrainz")
    with pytest.raises(BadSource, match="column artist_name holds list"):
        list(read(dump("nested", pa.array([["Kiasmos"]]))))
    with pytest.raises(BadSource, match="Invalid UTF8"):
        list(read(dump("latin1", pa.array([b"Bj\xf6rk"], pa.binary()))))
    for name, artist in (("utf8", pa.array(["Björk".encode()], pa.binary())),
                         ("numbers", pa.array([808]))):
        [batch] = list(read(dump(name, artist)))
        assert batch.table["artist"].type == pa.string()


def test_one_column_mapped_twice_is_refused(archive: Archive, tmp_path: Path) -> None:
    """The last --map used to win silently: 'when' became the artist, not the time."""
    table = tmp_path / "m.csv"
    table.write_text("when,who,what\n1700000000,A,B\n")
    result = run(archive, "listens", "import", "-f", "table", "--map", "when=ts",
                 "--map", "when=artist", "--map", "what=title", str(table))
    assert result.exit_code == 2 and "maps column 'when' twice" in result.stderr


def test_a_source_name_that_looks_like_rich_markup_is_printed_as_text(
        archive: Archive, testdata: Path) -> None:
    """--source '[/x]' stored the listens, then crashed printing the summary (MarkupError:
    an internal error, exit 1, after a successful import)."""
    result = run(archive, "listens", "import", "-f", "listenbrainz", "--no-match",
                 "--source", "[/x]", str(testdata / LB / "listenbrainz_listens.jsonl"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[/x]: 2 new listens")


def test_a_line_longer_than_a_chunk_is_rejected_without_being_held(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """A 'line' of gigabytes (a compressed or one-array file named .jsonl) was gathered
    whole, copying it once per chunk: memory and time grew without bound."""
    from musicark.listens.formats import listenbrainz

    monkeypatch.setattr(listenbrainz, "JSONL_CHUNK_BYTES", 1024)
    parsed: list[int] = []
    columnar = listenbrainz._jsonl_columnar

    def spy(data: bytes, first_line: int, user: str):
        parsed.append(len(data))
        return columnar(data, first_line, user)

    monkeypatch.setattr(listenbrainz, "_jsonl_columnar", spy)
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"x" * 50_000 + b"\n" + listen_line(b"Kiasmos")
                     + listen_line(b"Kiasmos", 1_700_000_100))
    batches = list(reader_for("listenbrainz")(path))
    assert [(r.line, r.reason) for b in batches for r in b.rejects] == [
        (1, "listen larger than 10,240 bytes")]
    assert [r["line"] for b in batches for r in b.table.to_pylist()] == [2, 3]
    assert max(parsed) <= 2 * 1024


def test_rejects_file_that_is_an_input_is_refused_and_the_input_kept(
        archive: Archive, testdata: Path, tmp_path: Path) -> None:
    """`--rejects listens.jsonl listens.jsonl` emptied the user's file before reading it."""
    path = tmp_path / "listens.jsonl"
    path.write_bytes((testdata / LB / "listenbrainz_listens.jsonl").read_bytes())
    before = path.read_bytes()
    result = run(archive, "listens", "import", "-f", "listenbrainz", "--no-match",
                 "--rejects", str(path), str(tmp_path))
    assert result.exit_code == 2 and "is one of the files to import" in result.stderr
    assert path.read_bytes() == before
