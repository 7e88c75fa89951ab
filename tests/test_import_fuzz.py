"""Fuzzed bytes into every catalog importer and some listens importers, through the CLI
(hypothesis). Whatever the bytes: no traceback, no "internal error", no "Exception
ignored"; a refused source is one line on stderr and exit 6, and leaves the catalog as it
was (row counts equal, no staging file, no source left 'importing'); an accepted one exits
0. Tokens of each format are mixed with raw bytes so the parsers get past their first
check and meet trouble deeper in."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from musicark.archive import Archive
from musicark.cli import app

# No shrinking: a failure shows its example at once (shrinking an import can take minutes).
SETTINGS = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate])
NASTY = [b"\xff", b"\xed\xa0\x80", b"\x00", b"\r", b"\n", b"\xef\xbb\xbf", b"\xff\xfe",
         b"9" * 25, b"-" + b"9" * 400, b"\xc3", b"\xe2\x80\xae"]
CSV = [b"name", b"artists", b"isrc", b"duration_ms", b"popularity", b"explicit", b"markets",
       b"album", b"track_id", b"artist_ids", b",", b"\t", b'"', b'""', b";", b"\n", b"1",
       b"true", b"x", b"USRC17607839", b"-1", b"1e309", b"nan", b" "]
JSON = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\ud800", b"\\u0000", b"\n",
        b"null", b"true", b"1e999", b"NaN", b"-Infinity", b"0.5", b'"id"', b'"name"',
        b'"title"', b'"type"', b'"track"', b'"length"', b'"media"', b'"x"']
COPY = [b"\t", b"\n", b"\\N", b"\\", b"\\x", b"\\0", b"1", b"2", b"-1", b"t", b"\\."]
# Values put into otherwise valid records (the "@" of each seed).
JSON_VALUES = [b'"x"', b'"\\ud800"', b'"\\udfff\\ud800"', b"1" + b"0" * 400, b"NaN", b"1e999",
               b"-Infinity", b"null", b"[]", b"{}", b'"\xff"', b"-1", b"true", b"1.0",
               b'"\\u0000"', b"[" * 3000 + b"]" * 3000, b'"' + b"y" * 300_000 + b'"',
               b'["a", 1, null]', b'{"id": "z"}', b"9223372036854775808"]
TEXT_VALUES = [b"x", b'"q""uote"', b'"multi\nline"', b"\xff", b"", b"1" * 25, b"-5", b"1e400",
               b'"unclosed', b"a\tb", b"\xed\xa0\x80", b";;", b"\r", b"\\N", b"\\x41",
               b"\\\\", b"y" * 200_000, b"\x00", b"2024-13-45", b"\xe2\x80\xae"]
SEEDS = {
    "api-json": [
        b'{"type": "track", "id": "t1", "name": @, "duration_ms": 1000, "artists": '
        b'[{"id": "a1", "name": "A"}], "album": {"id": "al1", "name": "Al"}}',
        b'{"type": "album", "id": "al2", "name": @, "artists": [{"id": "a1", "name": @}]}',
        b'{"type": "artist", "id": "a2", "name": "B", "genres": [@], "popularity": @}',
        b'{"type": "track", "id": @, "name": "T", "explicit": @, "available_markets": [@]}'],
    "musicbrainz-json": [
        b'{"id": "r1", "title": @, "length": @, "isrcs": [@], "artist-credit": '
        b'[{"artist": {"id": "a1", "name": @, "sort-name": "A"}}]}',
        b'{"id": "rel1", "title": "T", "barcode": @, "media": [{"position": @, '
        b'"track-count": @, "tracks": [{"id": "tr1", "title": @, "position": 1, '
        b'"recording": {"id": "rec1", "length": @}}]}]}',
        b'{"id": "ac1", "title": "x", "duration": @, "artists": [{"id": "a9", "name": @}]}',
        b'{"id": "a5", "name": @, "sort-name": @, "genres": [{"name": @}]}',
        b'{"releases": [{"id": "rel2", "title": @, "date": @}]}'],
    "table-jsonl": [
        b'{"name": @, "artists": [@], "duration_ms": @, "isrc": @, "popularity": @}',
        b'{"name": "N", "artists": @, "markets": @, "explicit": @, "tempo": @}'],
    "csv": [b"@,A;B,USRC17607839,1000,Al", b"Name,@,@,@,@", b"N,A,,-1,@"],
    "tsv": [b"@\tA;B\tUS;GB", b"Name\t@\t@"],
}
GOOD = [b"1", b'"Name"', b"Name"]  # fine as a JSON value and as a field
# A one-row dump: every id is 1, so every link finds its row.
MB_WIDTHS = {"artist": 17, "artist_credit": 2, "artist_credit_name": 5, "recording": 9,
             "track": 12, "medium": 8, "release": 11, "release_group": 6, "isrc": 3}


def fuzzed(tokens: list[bytes], prefix: bytes = b"") -> st.SearchStrategy[bytes]:
    """Raw trouble: format tokens, nasty bytes and random bytes run together."""
    parts = st.one_of(st.sampled_from(tokens), st.sampled_from(tokens),
                      st.sampled_from(NASTY), st.binary(max_size=6))
    return st.lists(parts, max_size=40).map(lambda xs: prefix + b"".join(xs))


def with_holes(seeds: list[bytes], values: list[bytes], tokens: list[bytes],
               header: bytes = b"") -> st.SearchStrategy[bytes]:
    """Mostly valid records with a hostile value in each hole, among lines of garbage."""
    def fill(seed: bytes, picks: list[bytes]) -> bytes:
        parts = seed.split(b"@")
        return b"".join(p + picks[i % len(picks)] for i, p in enumerate(parts[:-1])) + parts[-1]

    value = st.one_of(st.sampled_from(GOOD), st.sampled_from(values))
    record = st.builds(fill, st.sampled_from(seeds), st.lists(value, min_size=1, max_size=4))
    line = st.one_of(record, record, record, fuzzed(tokens))
    return st.lists(line, min_size=1, max_size=6).map(
        lambda lines: header + b"\n".join(lines) + b"\n")


def state(archive: Archive) -> tuple:
    conn = archive.conn
    rows = tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
        "sources", "tracks", "albums", "artists", "track_artists", "album_artists",
        "artist_genres", "markets", "listen_files"))
    left = sorted(p.name for p in archive.path.iterdir() if "staging" in p.name)
    importing = conn.execute("SELECT count(*) FROM sources WHERE status != 'complete'"
                             ).fetchone()[0]
    return rows, left, importing


class Runs:
    """Runs the CLI on one archive and checks each run; remembers the exit codes."""

    def __init__(self, archive: Archive, unraisable: list) -> None:
        self.archive = archive
        self.unraisable = unraisable
        self.codes: set[int] = set()
        self.must_refuse = True  # some formats turn every line into a bad row instead

    def cli(self, *args: str) -> None:
        before = state(self.archive)
        run = CliRunner().invoke(app, [*args, "--archive", str(self.archive.path)],
                                 prog_name="musicark")
        text = run.stdout + run.stderr
        assert "Traceback" not in text and "internal error" not in text, text
        assert "Exception ignored" not in text and not self.unraisable, text
        assert run.exception is None or isinstance(run.exception, SystemExit), run.exception
        self.codes.add(run.exit_code)
        if run.exit_code == 0:
            return
        assert run.exit_code == 6, (run.exit_code, text)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
        after = state(self.archive)
        assert after == before, (text, before, after)
        assert after[2] == 0 and not after[1]

    def catalog_import(self, fmt: str, src: Path) -> None:
        self.cli("catalog", "import", "--format", fmt, str(src), "--name", "fuzz", "--replace")


@pytest.fixture
def runs(archive: Archive, monkeypatch) -> Iterator[Runs]:
    """A fuzz run must reach both an import (exit 0) and a refusal (exit 6): else its
    inputs never got past the first check, or never reached it."""
    unraisable: list = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    runs = Runs(archive, unraisable)
    yield runs
    assert runs.codes == ({0, 6} if runs.must_refuse else runs.codes | {0}), sorted(runs.codes)


@pytest.mark.parametrize(("suffix", "head"), [
    ("csv", b"name,artists,isrc,duration_ms,album\n"), ("tsv", b"name\tartists\tmarkets\n")])
def test_table_delimited(tmp_path: Path, runs: Runs, suffix: str,
                         head: bytes) -> None:
    src = tmp_path / f"in.{suffix}"

    @SETTINGS
    @given(data=st.one_of(with_holes(SEEDS[suffix], TEXT_VALUES, CSV, head),
                          fuzzed(CSV, head), fuzzed(CSV)))
    def run(data: bytes) -> None:
        src.write_bytes(data)
        runs.catalog_import("table", src)

    run()


@pytest.mark.parametrize(("fmt", "suffix"), [("table", "jsonl"), ("api-json", "jsonl"),
                                             ("musicbrainz-json", "jsonl"),
                                             ("musicbrainz-json", "json")])
def test_json_lines(tmp_path: Path, runs: Runs, fmt: str,
                    suffix: str) -> None:
    src = tmp_path / f"in.{suffix}"
    seeds = SEEDS["table-jsonl" if fmt == "table" else fmt]

    @SETTINGS
    @given(data=st.one_of(with_holes(seeds, JSON_VALUES, JSON), fuzzed(JSON)))
    def run(data: bytes) -> None:
        src.write_bytes(data)
        runs.catalog_import(fmt, src)

    run()


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"name": ["A", "B", None], "artists": ["X;Y", "Z", "W"],
                             "duration_ms": [1000, -5, 2**62], "isrc": ["USRC17607839", "x",
                                                                         None]}), buf)
    return buf.getvalue()


def test_table_parquet(tmp_path: Path, runs: Runs) -> None:
    """A real Parquet file with some of its bytes changed (Thrift metadata, pages)."""
    good = parquet_bytes()
    src = tmp_path / "in.parquet"

    @SETTINGS
    @given(flips=st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)),
                          max_size=4),
           cut=st.integers(0, len(good)))
    def run(flips: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(good)
        for at, value in flips:
            data[at] = value
        src.write_bytes(bytes(data[:cut]) if cut < 8 else bytes(data))
        runs.catalog_import("table", src)

    run()


def test_musicbrainz_dump(tmp_path: Path, runs: Runs) -> None:
    dump = tmp_path / "mbdump"
    dump.mkdir()

    def table(width: int) -> st.SearchStrategy[bytes]:
        row = st.builds(lambda at, value: b"\t".join(value if i == at else b"1"
                                                      for i in range(width)),
                        st.integers(0, width + 2), st.sampled_from(TEXT_VALUES))
        return st.lists(st.one_of(row, row, fuzzed(COPY)), max_size=3).map(
            lambda lines: b"\n".join(lines) + b"\n")

    @SETTINGS
    @given(contents=st.fixed_dictionaries({t: table(w) for t, w in MB_WIDTHS.items()}))
    def run(contents: dict[str, bytes]) -> None:
        for name, data in contents.items():
            (dump / name).write_bytes(data)
        runs.catalog_import("musicbrainz", tmp_path)

    run()


@pytest.mark.parametrize(("fmt", "name", "tokens"), [
    ("listenbrainz", "l.jsonl", JSON + [b'"listened_at"', b'"track_metadata"',
                                        b'"artist_name"', b'"track_name"', b"1700000000"]),
    ("lastfm", "l.csv", CSV + [b"1700000000", b"uts", b"artist", b"track"]),
    ("scrobbler-log", "l.log", COPY + [b"#AUDIOSCROBBLER/1.1\n", b"L", b"S", b"1700000000"]),
])
def test_listens(tmp_path: Path, runs: Runs, fmt: str, name: str,
                 tokens: list[bytes]) -> None:
    src = tmp_path / name
    runs.must_refuse = False  # a listens file of bad lines is imported with its rejects

    @SETTINGS
    @given(data=fuzzed(tokens))
    def run(data: bytes) -> None:
        src.write_bytes(data)
        runs.cli("listens", "import", "--format", fmt, str(src), "--no-match")

    run()
