"""Bad input through the real command line: one clear line and the documented exit code,
never "internal error ... please report it", and nothing recorded by a refused import."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TESTDATA, require_testdata
from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.cli import app
from musicark.derive.tagging import _record
from musicark.derive.tags import extension, tag_stored
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import Store
from musicark.synth import write_catalog

FLAC = TESTDATA / "audio/mutagen/silence-44-s.flac"
FLAC_DIR = str(FLAC.parent)
WS2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://musicbrainz.org/ns/mmd-2.0#">
  <release id="b84ee12a-09ef-421b-82de-0441a926375b">
    <title>The Dark Side of the Moon</title><status id="4e304316">Official</status>
    <medium-list count="1"><medium><position>1</position><track-list count="10">
      <track id="9d2e9a9f"><position>1</position><title>Speak to Me</title></track>
    </track-list></medium></medium-list>
  </release>
</metadata>
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """An archive with a catalog, one ingested file and a tagged copy with its patch."""
    require_testdata()
    root = tmp_path_factory.mktemp("bad-input")
    catalog = root / "catalog.csv"
    write_catalog(catalog, 200, "table", seed=2)
    with Archive.create(root / "arc") as archive:
        import_source(archive, "table", catalog)
        ingest(archive, [FLAC], workers=1, match=False)
        rowid, sha, container, codec = archive.conn.execute(
            "SELECT rowid, sha256, container, codec FROM files").fetchone()
        result = tag_stored(str(archive.store_path), sha, {"title": "Tagged"},
                            extension(container, codec))
        assert result["ok"], result
        _record(archive, rowid, result, {"title": "Tagged"})
    return root / "arc"


def _tagged(arc: Path) -> tuple[str, Path, Path]:
    """(tagged sha, tagged store path, patch store path)."""
    with Archive.open(arc, readonly=True) as archive:
        tagged, patch = archive.conn.execute("""
            SELECT o.sha256, p.sha256 FROM derivations d JOIN files o ON o.rowid = d.output_file
              JOIN files p ON p.rowid = d.patch_file WHERE d.kind = 'tagged'""").fetchone()
    store = Store(arc / "store")
    return tagged, store.path_for(tagged), store.path_for(patch)


def _writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


# -- the cases: each prepares its input and returns the arguments --------------------------
def truncated_jsonl_gz(arc: Path, tmp: Path) -> list[str]:
    rows = "".join(json.dumps({"type": "artist", "id": f"a{i}", "name": f"Artist {i}"}) + "\n"
                   for i in range(3000)).encode()
    data = gzip.compress(rows)
    (tmp / "cut.jsonl.gz").write_bytes(data[:len(data) // 2])
    return ["catalog", "import", "-f", "api-json", str(tmp / "cut.jsonl.gz")]


def truncated_mbdump_tar_bz2(arc: Path, tmp: Path) -> list[str]:
    dump = TESTDATA / "metadata" / "musicbrainz-mbdump"
    whole = tmp / "whole.tar"
    with tarfile.open(whole, "w") as tar:
        for f in sorted(dump.iterdir()):
            tar.add(f, arcname=f"mbdump/{f.name}")
    data = bz2.compress(whole.read_bytes())
    (tmp / "mbdump.tar.bz2").write_bytes(data[:len(data) // 2])
    return ["catalog", "import", "-f", "musicbrainz", str(tmp / "mbdump.tar.bz2")]


def truncated_csv_zst(arc: Path, tmp: Path) -> list[str]:
    import zstandard

    rows = "track_id,name\n" + "".join(f"{i},Song {i}\n" for i in range(20000))
    data = zstandard.ZstdCompressor().compress(rows.encode())
    (tmp / "cut.csv.zst").write_bytes(data[:len(data) // 2])
    return ["catalog", "import", "-f", "table", str(tmp / "cut.csv.zst")]


def deep_json(arc: Path, tmp: Path) -> list[str]:
    deep = '{"type": "artist", "id": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    fine = json.dumps({"type": "artist", "id": "fine", "name": "Fine"})
    (tmp / "deep.jsonl").write_text(deep + "\n" + fine + "\n", encoding="utf-8")
    return ["catalog", "import", "-f", "api-json", str(tmp / "deep.jsonl")]


def xml_as_api_json(arc: Path, tmp: Path) -> list[str]:
    (tmp / "release.xml").write_text(WS2_XML * 50, encoding="utf-8")
    return ["catalog", "import", "-f", "api-json", str(tmp / "release.xml")]


def xml_as_musicbrainz_json(arc: Path, tmp: Path) -> list[str]:
    (tmp / "release.json").write_text(WS2_XML, encoding="utf-8")
    return ["catalog", "import", "-f", "musicbrainz-json", str(tmp / "release.json")]


def csv_as_api_json(arc: Path, tmp: Path) -> list[str]:
    (tmp / "songs.jsonl").write_text("track_id,name\n1,Song\n", encoding="utf-8")
    return ["catalog", "import", "-f", "api-json", str(tmp / "songs.jsonl")]


def all_rows_bad(arc: Path, tmp: Path) -> list[str]:
    (tmp / "bad.jsonl").write_text('{"type": "song", "id": "1"}\n[1]\n', encoding="utf-8")
    return ["catalog", "import", "-f", "api-json", str(tmp / "bad.jsonl")]


def show_surrogate(arc: Path, tmp: Path) -> list[str]:
    return ["show", os.fsdecode(b"track\xff\xfe")]


def lookup_surrogate(arc: Path, tmp: Path) -> list[str]:
    return ["lookup", os.fsdecode(b"GBAHS14\xff0099")]


def lookup_file_not_utf8(arc: Path, tmp: Path) -> list[str]:
    (tmp / "ids.txt").write_bytes(b"GBAHS1400099\nCAF\xc9\n")
    return ["lookup", "--file", str(tmp / "ids.txt")]


def restore_corrupt_patch(arc: Path, tmp: Path) -> list[str]:
    tagged, _, patch = _tagged(arc)
    data = bytearray(patch.read_bytes())
    data[len(data) // 2] ^= 0xFF
    _writable(patch).write_bytes(bytes(data))
    return ["restore", tagged, str(tmp / "out.flac")]


def restore_patch_not_zstd(arc: Path, tmp: Path) -> list[str]:
    """A patch whose bytes are garbage yet still named by its (now wrong) hash."""
    tagged, _, patch = _tagged(arc)
    _writable(patch).write_bytes(b"not a zstd frame at all")
    return ["restore", tagged, str(tmp / "out.flac")]


def restore_missing_store_file(arc: Path, tmp: Path) -> list[str]:
    tagged, path, _ = _tagged(arc)
    path.unlink()
    return ["restore", tagged, str(tmp / "out.flac")]


def restore_hash_mismatch(arc: Path, tmp: Path) -> list[str]:
    """The patch rebuilds other bytes than the ledger names as the original."""
    tagged, _, _ = _tagged(arc)
    with Archive.open(arc) as archive:
        archive.conn.execute("UPDATE files SET sha256 = ? WHERE rowid = (SELECT input_file "
                             "FROM derivations WHERE kind = 'tagged')", ("0" * 64,))
    return ["restore", tagged, str(tmp / "out.flac")]


def restore_missing_output_dir(arc: Path, tmp: Path) -> list[str]:
    tagged, _, _ = _tagged(arc)
    return ["restore", tagged, str(tmp / "no" / "such" / "dir" / "out.flac")]


def restore_not_a_sha(arc: Path, tmp: Path) -> list[str]:
    return ["restore", os.fsdecode(b"\xff" * 4), str(tmp / "out.flac")]


def withdraw_unknown_track(arc: Path, tmp: Path) -> list[str]:
    return ["withdraw", "track:99999", "--reason", "test"]


def withdraw_unknown_file(arc: Path, tmp: Path) -> list[str]:
    return ["withdraw", "file:99999", "--reason", "test"]


def _not_a_database(arc: Path) -> None:
    for extra in ("-wal", "-shm"):
        (arc / f"catalog.sqlite{extra}").unlink(missing_ok=True)
    (arc / "catalog.sqlite").write_bytes(os.urandom(8192))


def _malformed(arc: Path) -> None:
    """Valid header, garbage pages after it (as a torn write or a bad disk leaves it)."""
    for extra in ("-wal", "-shm"):
        (arc / f"catalog.sqlite{extra}").unlink(missing_ok=True)
    path = arc / "catalog.sqlite"
    data = bytearray(path.read_bytes())
    data[4096:] = b"\x5a" * (len(data) - 4096)
    path.write_bytes(bytes(data))


def _emptied(arc: Path) -> None:
    for extra in ("-wal", "-shm"):
        (arc / f"catalog.sqlite{extra}").unlink(missing_ok=True)
    (arc / "catalog.sqlite").write_bytes(b"")


def damaged(damage: Callable[[Path], None], *args: str) -> Callable[[Path, Path], list[str]]:
    def case(arc: Path, tmp: Path) -> list[str]:
        argv = [a.replace("{tagged}", _tagged(arc)[0]).replace("{tmp}", str(tmp))
                for a in args]
        damage(arc)
        return argv
    return case


DAMAGED = "catalog.sqlite is damaged"
LOST = "catalog.sqlite is missing or empty"
CASES = {
    "truncated .jsonl.gz": (truncated_jsonl_gz, 6, "truncated or corrupt compressed data"),
    "truncated .tar.bz2": (truncated_mbdump_tar_bz2, 6, "truncated or corrupt compressed data"),
    "truncated .csv.zst": (truncated_csv_zst, 6, "truncated or corrupt compressed data"),
    "JSON 100k levels deep": (deep_json, 0, "line 1: JSON nested too deeply to read"),
    "XML to api-json": (xml_as_api_json, 6, "this is XML; supported formats are"),
    "XML to musicbrainz-json": (xml_as_musicbrainz_json, 6, "this is XML; supported formats"),
    "CSV to api-json": (csv_as_api_json, 6, "not JSON (it starts with 'track_id,name')"),
    "every record bad": (all_rows_bad, 6, "not one of the 2 records could be imported"),
    "show non-UTF-8": (show_surrogate, 2, "is not valid UTF-8 text"),
    "lookup non-UTF-8": (lookup_surrogate, 2, "is not valid UTF-8 text"),
    "lookup --file non-UTF-8": (lookup_file_not_utf8, 2, "not UTF-8 text (byte 16)"),
    "restore corrupt patch": (restore_corrupt_patch, 11, "is damaged in the store"),
    "restore garbage patch": (restore_patch_not_zstd, 11, "is damaged in the store"),
    "restore missing store file": (restore_missing_store_file, 11, "missing from the store"),
    "restore hash mismatch": (restore_hash_mismatch, 11, "restored bytes do not match"),
    "restore missing output dir": (restore_missing_output_dir, 2, "does not exist"),
    "restore not a SHA-256": (restore_not_a_sha, 2, "not a SHA-256"),
    "withdraw unknown track": (withdraw_unknown_track, 7, "no track track:99999"),
    "withdraw unknown file": (withdraw_unknown_file, 7, "no file file:99999"),
    **{f"{verb[0]} on a catalog that is not a database": (
        damaged(_not_a_database, *verb), 12, DAMAGED) for verb in (
        ("ledger",), ("derive",), ("plan", "create", "--budget", "1GB"),
        ("restore", "{tagged}", "{tmp}/out.flac"), ("ingest", FLAC_DIR, "--workers", "1"),
        ("tag",), ("match",), ("stats",), ("search", "love"))},
    **{f"{verb[0]} on a malformed catalog": (damaged(_malformed, *verb), 12, DAMAGED)
       for verb in (("ledger",), ("derive",), ("plan", "create", "--budget", "1GB"),
                    ("restore", "{tagged}", "{tmp}/out.flac"),
                    ("ingest", FLAC_DIR, "--workers", "1"), ("tag",), ("match",),
                    ("stats",))},
    **{f"{verb[0]} on an emptied catalog": (damaged(_emptied, *verb), 12, LOST)
       for verb in (("ingest", FLAC_DIR, "--workers", "1"), ("match",), ("stats",),
                    ("tag",))},
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_clear_line_and_its_exit_code(case: str, base: Path,
                                                         tmp_path: Path) -> None:
    prepare, code, message = CASES[case]
    arc = tmp_path / "arc"
    shutil.copytree(base, arc)
    args = prepare(arc, tmp_path)
    env = {"COLUMNS": "400", "NO_COLOR": "1", "MUSICARK_ARCHIVE": str(arc)}
    result = CliRunner().invoke(app, args, env=env, prog_name="musicark")
    assert "internal error" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert message in result.output, result.output
    assert result.exit_code == code, result.output
    if code:
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.output
    if args[:2] == ["catalog", "import"] and code:
        assert not list(arc.glob(".mbdump-staging*"))
        with Archive.open(arc, readonly=True) as archive:
            names = [r[0] for r in archive.conn.execute("SELECT name FROM sources")]
        assert names == ["catalog.csv"], "a refused import recorded a source"
