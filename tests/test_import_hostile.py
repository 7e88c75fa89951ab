"""`catalog import` on input nobody meant to give it: devices, FIFOs, text SQLite cannot
hold, numbers no column holds, CSV in another encoding or with absurd fields. Each gets one
clear line (exit 6 for a refused source, a bad row with its line otherwise), never a
traceback, and a refused source leaves the catalog as it was."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.errors import BadSource


def cli(archive: Archive, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real CLI in its own process, with 1.5 GiB of address space: a read that never
    ends fails fast instead of taking the machine's memory."""
    cmd = shlex.join([sys.executable, "-m", "musicark", *args, "--archive", str(archive.path)])
    return subprocess.run(["bash", "-c", f"ulimit -v 1500000; exec {cmd}"], capture_output=True,
                          text=True, timeout=timeout)


def counts(archive: Archive) -> tuple[int, ...]:
    return tuple(archive.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("sources", "tracks", "albums", "artists"))


def one_error_line(run: subprocess.CompletedProcess) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    return lines[0]


# -- 1. only regular files --------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["table", "api-json", "musicbrainz-json", "musicbrainz"])
def test_dev_zero_is_refused_not_read(archive: Archive, fmt: str) -> None:
    run = cli(archive, "catalog", "import", "--format", fmt, "/dev/zero", "--name", "z")
    assert run.returncode == 6
    assert "not a regular file (character device)" in one_error_line(run)
    assert counts(archive) == (0, 0, 0, 0)


def test_standard_input_is_read_when_asked_for_with_a_dash(archive: Archive) -> None:
    import gzip

    def run(data: bytes, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "musicark", "catalog", "import", "-",
                               *args, "--archive", str(archive.path)], input=data,
                              capture_output=True, timeout=120)

    good = run(gzip.compress(b"name,artists\nPiped,X\n"), "--format", "table",
               "--table-format", "csv", "--name", "piped")
    assert good.returncode == 0, good.stderr
    assert archive.conn.execute("SELECT uri FROM sources").fetchall() == [("stdin",)]
    bad = run(b"name,artists\nB\xffd,X\n", "--format", "table", "--table-format", "csv",
              "--name", "latin1")
    assert bad.returncode == 6
    assert bad.stderr.decode().startswith("error: standard input: line 2 is not UTF-8 text")
    unnamed = run(b"", "--format", "api-json")
    assert unnamed.returncode == 2 and b"--name" in unnamed.stderr
    assert counts(archive)[:2] == (1, 1)
    assert not [p for p in archive.path.iterdir() if p.name.startswith(".import-stdin")]


@pytest.mark.parametrize("fmt", ["table", "api-json", "musicbrainz-json"])
def test_a_fifo_is_refused_not_waited_on(archive: Archive, tmp_path: Path, fmt: str) -> None:
    fifo = tmp_path / "catalog.jsonl"
    os.mkfifo(fifo)
    run = cli(archive, "catalog", "import", "--format", fmt, str(fifo), timeout=60)
    assert run.returncode == 6
    assert "not a regular file (FIFO)" in one_error_line(run)


def test_every_file_read_inside_a_dump_folder_is_regular(archive: Archive,
                                                         tmp_path: Path) -> None:
    mbdump = tmp_path / "dump" / "mbdump"
    mbdump.mkdir(parents=True)
    (mbdump / "artist").symlink_to("/dev/zero")
    with pytest.raises(BadSource, match=r"artist: not a regular file \(character device\)"):
        import_source(archive, "musicbrainz", tmp_path / "dump")
    folder = tmp_path / "mbjson"
    folder.mkdir()
    (folder / "a.json").write_text('{"id": "a1", "name": "A", "sort-name": "A"}')
    os.mkfifo(folder / "b.jsonl")
    with pytest.raises(BadSource, match=r"b.jsonl: not a regular file \(FIFO\)"):
        import_source(archive, "musicbrainz-json", folder)
    assert counts(archive) == (0, 0, 0, 0)


# -- 2. text SQLite and UTF-8 cannot hold -----------------------------------------------
SURROGATE_LINES = {
    "api-json": ('{"type": "track", "id": "t1", "name": "Good"}',
                 '{"type": "track", "id": "t2", "name": "Bad \\ud800 one"}'),
    "musicbrainz-json": ('{"id": "r1", "title": "Good", "length": 1000}',
                         '{"id": "r2", "title": "Bad \\ud800 one", "length": 1000}'),
    "table": ('{"name": "Good", "artists": ["A"]}',
              '{"name": "Bad", "artists": ["A \\udfff"]}'),
}


@pytest.mark.parametrize("fmt", sorted(SURROGATE_LINES))
def test_a_lone_surrogate_is_a_bad_row_never_a_silent_null(archive: Archive, tmp_path: Path,
                                                           fmt: str) -> None:
    src = tmp_path / "in.jsonl"
    good, bad = SURROGATE_LINES[fmt]
    src.write_text(f"{good}\n{bad}\n")
    report = import_source(archive, fmt, src)
    assert report.counts["tracks"] == 1
    text, code = ("A \udfff", "DFFF") if fmt == "table" else ("Bad \ud800 one", "D800")
    assert [(b.line, b.reason.removeprefix("in.jsonl: ")) for b in report.bad_row_samples] == [
        (2, f"text that UTF-8 cannot hold: a lone surrogate U+{code} in {text!r}; record not "
            "imported")]
    # Nothing stored can fail to encode: every text column and extra is valid UTF-8.
    for row in archive.conn.execute("SELECT name, extra, diff FROM tracks"):
        for text in row:
            assert text is None or text.encode("utf-8")
    run = cli(archive, "show", "track:1", "--json")
    assert run.returncode == 0 and '"Good"' in run.stdout, run.stderr


# -- 3. numbers no column can hold ------------------------------------------------------
def test_musicbrainz_json_with_a_400_digit_number_is_a_bad_row(archive: Archive,
                                                               tmp_path: Path) -> None:
    src = tmp_path / "recordings.jsonl"
    src.write_text('{"id": "r1", "title": "Good", "length": 1000}\n'
                   '{"id": "r2", "title": "Huge", "length": 1' + "0" * 399 + '}\n'
                   '{"id": "a1", "title": "Endless", "duration": Infinity, "artists": []}\n')
    run = cli(archive, "catalog", "import", "--format", "musicbrainz-json", str(src))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert ("line 2: recordings.jsonl: a number no column can hold: an integer of 400 digits; "
            "record not imported") in run.stderr
    assert "line 3: recordings.jsonl: a number no column can hold: inf" in run.stderr
    assert counts(archive)[1] == 1


# -- 3. CSV in another encoding, absurd fields, garbage ---------------------------------
def test_csv_with_invalid_utf8_is_refused_naming_its_line(archive: Archive,
                                                          tmp_path: Path) -> None:
    before = counts(archive)
    src = tmp_path / "latin1.csv"
    src.write_bytes(b"name,artists\nHyperballad,Bjork\nJoga,Bj\xf6rk\n")
    run = cli(archive, "catalog", "import", "--format", "table", str(src))
    assert run.returncode == 6
    assert one_error_line(run) == (
        f"error: {src}: line 3 is not UTF-8 text (byte 0xF6); a CSV/TSV must be UTF-8: "
        "convert it (e.g. iconv -f WINDOWS-1252 -t UTF-8) and import again; nothing was "
        "imported")
    src.write_bytes("name,artists\nJoga,Björk\n".encode("utf-16"))
    with pytest.raises(BadSource, match="this is UTF-16 text"):
        import_source(archive, "table", src)
    assert counts(archive) == before


def test_garbage_csv_gives_one_line_not_an_ignored_exception(archive: Archive,
                                                             tmp_path: Path) -> None:
    """pyarrow decoded a malformed row itself for the invalid-row callback and printed
    "Exception ignored ... Traceback" before the real error."""
    src = tmp_path / "garbage.csv"
    src.write_bytes(b"name,artists\n]\xff\x00\nok,x\n")
    run = cli(archive, "catalog", "import", "--format", "table", str(src))
    assert run.returncode == 6
    assert "line 2 is not UTF-8 text (byte 0xFF)" in one_error_line(run)


def test_a_field_over_131072_bytes_is_read_and_line_numbers_still_found(
        archive: Archive, tmp_path: Path) -> None:
    """Python's csv (used to find the lines of bad rows) stopped at its 131,072-byte
    default; the cap is now Arrow's 1 MiB block, the same for both readers."""
    src = tmp_path / "long.csv"
    src.write_text("name,artists\n" + '"' + "x" * 200_000 + '",A\n' + ",B\nok,C\n")
    run = cli(archive, "catalog", "import", "--format", "table", str(src))
    assert run.returncode == 0, run.stderr
    assert "internal error" not in run.stderr and "line 3: no track name" in run.stderr
    assert counts(archive)[1] == 2


@pytest.mark.parametrize("body", ['"' + "x" * 2_500_000 + '",A\nok,B\n',
                                  '"never closed,A\n' + "y,B\n" * 600_000])
def test_a_row_over_the_cap_or_an_unclosed_quote_is_refused_with_its_line(
        archive: Archive, tmp_path: Path, body: str) -> None:
    src = tmp_path / "huge.csv"
    src.write_text("name,artists\nok,A\n" + body)
    with pytest.raises(BadSource, match=r"line 3: a row longer than 1 MiB \(the most a CSV/TSV "
                                        r"row may hold\) or a quote that is never closed"):
        import_source(archive, "table", src)
    assert counts(archive) == (0, 0, 0, 0)


# -- found by the fuzz tests (test_import_fuzz.py) --------------------------------------
def test_table_jsonl_numbers_and_lists_where_text_belongs(archive: Archive,
                                                          tmp_path: Path) -> None:
    """A float duration (`&` bound tighter than `<`: a TypeError on every float column), a
    list where the name belongs (a null-typed column), an infinite popularity (its reason
    took int(inf))."""
    src = tmp_path / "rows.jsonl"
    src.write_text('{"name": "A", "duration_ms": 1000.0}\n{"name": "B", "duration_ms": 1.5}\n'
                   '{"name": "D", "popularity": 1e999}\n')
    report = import_source(archive, "table", src)
    assert report.counts["tracks"] == 1
    assert [(b.line, b.reason) for b in report.bad_row_samples] == [
        (2, "duration_ms: 1.5 is not an integer"), (3, "popularity: inf is not an integer")]
    src.write_text('{"name": ["C"]}\n')  # every name a list: the column is a list column
    with pytest.raises(BadSource, match=r"line 1: name: \['C'\] is not text"):
        import_source(archive, "table", src, name="lists")
    # markets of nested lists (dropped in silence before) and of nulls only (a crash)
    src.write_text('{"name": "E", "markets": [["US"]]}\n{"name": "F", "markets": []}\n')
    report = import_source(archive, "table", src, name="markets")
    assert report.counts["tracks"] == 1
    assert [(b.line, b.reason) for b in report.bad_row_samples] == [
        (1, "markets: [['US']] is not usable here")]


def test_musicbrainz_json_fields_of_the_wrong_type_are_bad_documents(archive: Archive,
                                                                     tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text('{"id": "r1", "title": "Good", "length": 1000}\n'
                   '{"id": "r2", "title": ["not", "text"]}\n'
                   '{"releases": [{"id": "rel2", "title": "T", "date": 2024}]}\n'
                   '{"id": "ac1", "title": "x", "duration": 1e300, "artists": []}\n'
                   '{"id": "a5", "name": "A", "sort-name": {"id": "z"}}\n')
    report = import_source(archive, "musicbrainz-json", src)
    assert report.counts == {"tracks": 1, "albums": 1, "artists": 0}
    assert [(b.line, b.reason) for b in report.bad_row_samples] == [
        (2, "docs.jsonl: `title` is list where text belongs; document not imported"),
        (4, "docs.jsonl: `duration` 1e+300 is no length in seconds; document not imported"),
        (5, "docs.jsonl: `sort-name` is dict where text belongs; document not imported")]


def test_musicbrainz_dump_with_a_repeated_mbid_reports_the_repeat(archive: Archive,
                                                                  tmp_path: Path) -> None:
    """Every id 1 (all links resolve) and every row twice: MBIDs repeat in each table."""
    from musicark.catalog.importers.mbdump import REQUIRED, TABLES

    mbdump = tmp_path / "mbdump"
    mbdump.mkdir()
    for table in REQUIRED:
        row = "\t".join(["1"] * len(TABLES[table]))
        (mbdump / table).write_text(f"{row}\n{row}\n")
    report = import_source(archive, "musicbrainz", tmp_path)
    assert report.counts == {"tracks": 1, "albums": 1, "artists": 1}
    reasons = {(b.line, b.reason) for b in report.bad_row_samples}
    assert {(2, "artist: MBID 1 repeated; row not imported"),
            (2, "release: MBID 1 repeated; row not imported"),
            (2, "track: MBID 1 repeated; row not imported")} <= reasons


def test_a_damaged_parquet_page_is_one_clear_error(archive: Archive, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"name": ["A"] * 1000, "artists": ["X"] * 1000}), src,
                   compression="none")
    data = bytearray(src.read_bytes())
    data[4:40] = b"\xff" * 36  # the first page header
    src.write_bytes(bytes(data))
    with pytest.raises(BadSource, match=r"damaged Parquet data after row 0: .*nothing was "
                                        r"imported$"):
        import_source(archive, "table", src)
    assert counts(archive) == (0, 0, 0, 0)


@pytest.mark.parametrize("fmt", ["api-json", "table", "musicbrainz-json", "musicbrainz"])
def test_a_line_without_end_is_refused_not_held_in_memory(archive: Archive, tmp_path: Path,
                                                          monkeypatch, fmt: str) -> None:
    """A small .gz of zeros with no newline is /dev/zero in disguise: every line reader
    stops at MAX_LINE (256 MiB; 1 MiB here) instead of holding the line whole."""
    import gzip

    from musicark.catalog.importers import base

    monkeypatch.setattr(base, "MAX_LINE", 1 << 20)
    endless = b"{" + b"0" * (3 << 20) + b"\n"
    if fmt == "musicbrainz":
        (tmp_path / "mbdump").mkdir()
        src = tmp_path
        (src / "mbdump" / "artist").write_bytes(endless)
        where = "artist: line 1"
    else:
        src = tmp_path / "endless.jsonl.gz"
        src.write_bytes(gzip.compress(b'{"name": "ok"}\n' + endless))
        where = "endless.jsonl.gz: line 2"
    with pytest.raises(BadSource, match=f"{where} is longer than 1 MiB, the most a line may "
                                        "hold; nothing was imported"):
        import_source(archive, fmt, src)
    assert counts(archive) == (0, 0, 0, 0)


def test_parquet_text_that_is_not_utf8_is_refused_naming_the_row(archive: Archive,
                                                                 tmp_path: Path) -> None:
    """Found by the fuzz test: Parquet text is not checked as it is read, and Arrow's text
    kernels then raised ArrowInvalid (an internal error)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"name": ["okay", "Björk", "zzzz"]}), src, compression="none",
                   use_dictionary=False)
    src.write_bytes(src.read_bytes().replace("Björk".encode(), b"Bj\xff\xb6rk"))  # and stats
    with pytest.raises(BadSource, match=r"t.parquet: row 2, column 'name': text that is not "
                                        "UTF-8; nothing was imported"):
        import_source(archive, "table", src)
    assert counts(archive) == (0, 0, 0, 0)
