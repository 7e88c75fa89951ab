"""The bit-rot suite: flip a byte in, truncate, and delete each kind of file an archive
holds; `verify` must find it and name the file and the damage, `repair` must heal it (from
the archive's own derivations where it can, else from a second archive), `verify` must then
be clean, and no other file may have changed (every file's hash is compared)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from fixity_fixture import build, copy_archive, flip, hashes, truncate
from musicark.archive import Archive
from musicark.ingest.store import Store
from musicark.verify.catalog_restore import restore_catalog
from musicark.verify.repair import release_copies, repair
from musicark.verify.run import run_verify


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory)


def _one(conn: sqlite3.Connection, sql: str) -> str:
    return conn.execute(sql).fetchone()[0]


TARGETS: dict[str, Callable[[Path, sqlite3.Connection], Path]] = {
    "untagged original": lambda a, c: Store(a / "store").path_for(_one(c, """
        SELECT i.sha256 FROM derivations d JOIN files i ON i.rowid = d.input_file
         WHERE d.kind = 'tagged' AND i.codec = 'aac' ORDER BY i.rowid""")),
    "tagged copy": lambda a, c: Store(a / "store").path_for(_one(c, """
        SELECT o.sha256 FROM derivations d JOIN files o ON o.rowid = d.output_file
         WHERE d.kind = 'tagged' AND o.codec = 'opus' ORDER BY o.rowid""")),
    "opus derivative": lambda a, c: Store(a / "store").path_for(_one(c, """
        SELECT o.sha256 FROM derivations d JOIN files o ON o.rowid = d.output_file
         WHERE d.kind = 'opus75' AND d.output_file != d.input_file ORDER BY o.rowid""")),
    "restore patch": lambda a, c: Store(a / "store").path_for(_one(c, """
        SELECT p.sha256 FROM derivations d JOIN files p ON p.rowid = d.patch_file
         ORDER BY p.rowid""")),
    "torrent file": lambda a, c: a / "releases" / "r1" / _one(
        c, "SELECT path FROM torrents WHERE metadata = 0 ORDER BY id"),
    "bag manifest": lambda a, c: a / "releases" / "r1" / "shards" / _one(
        c, "SELECT name FROM torrents WHERE metadata = 0 ORDER BY id") / "manifest-sha256.txt",
    "torrents.json": lambda a, c: a / "releases" / "r1" / "torrents.json",
    "catalog snapshot": lambda a, c: a / "releases" / "r1" / "metadata" / _one(
        c, "SELECT name FROM torrents WHERE metadata = 1") / "catalog.sqlite.zst",
    "files.jsonl": lambda a, c: a / "releases" / "r1" / "shards" / _one(
        c, "SELECT name FROM torrents WHERE metadata = 0 ORDER BY id DESC") / "files.jsonl",
}


DAMAGES = {"flip": flip, "truncate": truncate, "delete": Path.unlink}
# What verify must call each damage (store files: its own check; release files: the
# torrent or the manifests; a torrent file: libtorrent's or the infohash check).
KINDS = {"flip": {"checksum", "invalid", "mismatch"},
         "truncate": {"size", "checksum", "invalid", "mismatch"}, "delete": {"missing"}}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_bit_rot_is_found_and_healed(base: Path, tmp_path: Path, target: str,
                                     damage: str) -> None:
    arc = copy_archive(base, tmp_path / "a")
    second = copy_archive(base, tmp_path / "second")
    with Archive.open(arc) as archive:
        victim = TARGETS[target](arc, archive.conn)
    before = hashes(arc)
    original = victim.read_bytes()
    DAMAGES[damage](victim)
    damaged_bytes = None if damage == "delete" else victim.read_bytes()

    report = run_verify(arc, workers=1)
    assert report.exit_code == 1
    named = [p for p in report.damaged if p.path == str(victim)]
    assert named and {p.kind for p in named} & KINDS[damage], \
        [p.line() for p in report.problems]

    store_file = target in ("untagged original", "tagged copy", "opus derivative",
                            "restore patch")
    with Archive.open(arc) as archive:  # an event per failure, PREMIS-style
        subject = victim.name if store_file else str(victim)
        outcomes = {r[0] for r in archive.conn.execute(
            "SELECT outcome FROM events WHERE kind = 'fixity' AND subject = ?", (subject,))}
        assert outcomes & KINDS[damage], outcomes
    with Archive.open(arc) as archive:
        # store files are rebuilt from the archive itself; release files need a copy
        result = repair(archive, [] if store_file else [second])
    assert result.exit_code == 0, result.as_dict()
    if store_file:
        assert any(r["how"] and "from " not in r["how"][:5] for r in result.repaired)

    after = run_verify(arc, workers=1)
    assert after.exit_code == 0, [p.line() for p in after.problems]
    assert hashes(arc) == before
    assert victim.read_bytes() == original
    if damaged_bytes is not None:  # the damaged bytes were moved aside, not deleted
        kept = [p.read_bytes() for p in (arc / "store" / "damaged").rglob("*") if p.is_file()]
        assert damaged_bytes in kept


def test_a_store_file_with_no_rebuild_comes_from_the_second_archive(
        base: Path, tmp_path: Path) -> None:
    arc = copy_archive(base, tmp_path / "a")
    second = copy_archive(base, tmp_path / "second")
    with Archive.open(arc) as archive:
        conn = archive.conn
        original, tagged = conn.execute("""
            SELECT i.sha256, o.sha256 FROM derivations d JOIN files i ON i.rowid = d.input_file
              JOIN files o ON o.rowid = d.output_file
             WHERE d.kind = 'tagged' AND i.codec = 'aac' ORDER BY i.rowid""").fetchone()
    store = Store(arc / "store")
    before = hashes(arc)
    for sha in (original, tagged):  # the original and its tagged copy: no way to rebuild
        store.path_for(sha).unlink()
    with Archive.open(arc) as archive:
        rowid = archive.conn.execute("SELECT rowid FROM files WHERE sha256 = ?",
                                     (tagged,)).fetchone()[0]
        for copy in release_copies(archive, rowid, tagged):  # nor a copy in the archive
            copy.unlink()
    with Archive.open(arc) as archive:
        alone = repair(archive)
        assert alone.exit_code == 1
        stuck = {u["sha256"]: u for u in alone.unrepaired}
        assert set(stuck) == {original, tagged}
        carried = stuck[tagged]["torrents"]
        assert carried and carried[0]["magnet"].startswith("magnet:?xt=urn:btih:")
        assert carried[0]["path"].startswith(carried[0]["shard"] + "/data/")
        status = archive.conn.execute("SELECT status, reason FROM files WHERE sha256 = ?",
                                      (tagged,)).fetchone()
        assert status[0] == "damaged" and "missing" in status[1]
        healed = repair(archive, [second])
        assert healed.exit_code == 0, healed.as_dict()
        assert {r["how"].split()[0] for r in healed.repaired} == {"from"}
        assert archive.conn.execute("SELECT count(*) FROM files WHERE status = 'damaged'"
                                    ).fetchone()[0] == 0
    assert run_verify(arc, workers=1).exit_code == 0
    assert hashes(arc) == before


def _tagged_copy(archive: Archive) -> tuple[int, str, list[Path]]:
    """The tagged copy of an original that has no other rebuild: rowid, SHA-256 and its
    copies in the archive's own release (hardlinks of the store file)."""
    original, rowid, sha = archive.conn.execute("""
        SELECT i.sha256, o.rowid, o.sha256 FROM derivations d
          JOIN files i ON i.rowid = d.input_file JOIN files o ON o.rowid = d.output_file
         WHERE d.kind = 'tagged' AND i.codec = 'aac' ORDER BY i.rowid""").fetchone()
    return rowid, sha, release_copies(archive, rowid, sha)


def test_a_deleted_store_file_comes_back_from_the_archive_s_own_release(
        base: Path, tmp_path: Path) -> None:
    """Issue #25: with store objects deleted and a release hardlink intact, repair used to
    ask for a magnet link; the release copy is an independent copy now (another inode), and
    the original, which only that copy can rebuild, comes back in a second pass."""
    arc = copy_archive(base, tmp_path / "a")
    before = hashes(arc)
    with Archive.open(arc) as archive:
        rowid, sha, copies = _tagged_copy(archive)
        original = archive.conn.execute(
            "SELECT i.sha256 FROM derivations d JOIN files i ON i.rowid = d.input_file "
            "WHERE d.output_file = ?", (rowid,)).fetchone()[0]
        assert copies and all(c.stat().st_nlink == 2 for c in copies)
        store = Store(arc / "store")
        store.path_for(original).unlink()
        store.path_for(sha).unlink()
        result = repair(archive)
    assert result.exit_code == 0, result.as_dict()
    assert result.unrepaired == []
    how = {r["sha256"]: r["how"] for r in result.repaired}
    assert how[sha] == f"release copy {copies[0].relative_to(arc)}"
    assert how[original].startswith("restore patch"), how
    assert store.path_for(sha).stat().st_ino == copies[0].stat().st_ino  # linked back
    assert hashes(arc) == before
    assert run_verify(arc, workers=1).exit_code == 0


def test_a_release_copy_with_other_bytes_is_not_used(base: Path, tmp_path: Path) -> None:
    """A candidate from the releases is hashed before use, like any other."""
    arc = copy_archive(base, tmp_path / "a")
    with Archive.open(arc) as archive:
        rowid, sha, copies = _tagged_copy(archive)
        original = archive.conn.execute(
            "SELECT i.sha256 FROM derivations d JOIN files i ON i.rowid = d.input_file "
            "WHERE d.output_file = ?", (rowid,)).fetchone()[0]
        store = Store(arc / "store")
        store.path_for(original).unlink()  # no rebuild of the tagged copy either
        store.path_for(sha).unlink()
        for copy in copies:
            flip(copy)  # its only copy left, rotten
        result = repair(archive, releases=False)
    stuck = {u["sha256"]: u for u in result.unrepaired}
    assert sha in stuck and stuck[sha]["torrents"], result.as_dict()
    assert not store.path_for(sha).exists()


def _catalog_flip(catalog: Path) -> None:
    conn = sqlite3.connect(catalog)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tracks'").fetchone()[0]
    conn.close()
    with open(catalog, "r+b") as fh:  # the b-tree page type of a table root
        fh.seek((root - 1) * page)
        kind = fh.read(1)[0]
        fh.seek((root - 1) * page)
        fh.write(bytes([kind ^ 0xFF]))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_catalog_is_found_and_rebuilt_from_the_release_snapshot(
        base: Path, tmp_path: Path, damage: str) -> None:
    arc = copy_archive(base, tmp_path / "a")
    Archive.open(arc).close()  # the schema up to date and the WAL folded in
    before = hashes(arc)
    catalog = arc / "catalog.sqlite"
    {"flip": _catalog_flip, "truncate": truncate, "delete": Path.unlink}[damage](catalog)

    report = run_verify(arc, workers=1)
    assert report.exit_code == 1
    assert any(p.path == str(catalog) for p in report.damaged), \
        [p.line() for p in report.problems]

    restored = restore_catalog(arc, "r1")
    assert restored["releases_recorded_again"][0]["release"] == "r1"
    assert any("event log" in line for line in restored["lacks"])
    with Archive.open(arc) as archive:  # private to this machine: not shipped, made anew
        assert archive.conn.execute("SELECT count(*) FROM ingest_runs").fetchone() == (0,)
    after = run_verify(arc, workers=1)
    assert after.exit_code == 0, [p.line() for p in after.problems]
    assert after.notes["releases.releases"] == 1  # the release is checked again, from its records
    assert hashes(arc) == before


def test_repair_is_idempotent(base: Path, tmp_path: Path) -> None:
    arc = copy_archive(base, tmp_path / "a")
    with Archive.open(arc) as archive:
        flip(TARGETS["opus derivative"](arc, archive.conn))
    run_verify(arc, "store", workers=1)
    with Archive.open(arc) as archive:
        first = repair(archive)
        again = repair(archive)
    assert len(first.repaired) == 1 and first.exit_code == 0
    assert again.repaired == [] and again.exit_code == 0
    assert json.dumps(run_verify(arc, workers=1).as_dict()["problems"]) == "[]"


def test_a_stray_file_in_a_shard_is_moved_aside_not_deleted(base: Path, tmp_path: Path
                                                            ) -> None:
    arc = copy_archive(base, tmp_path / "a")
    before = hashes(arc)
    shard = sorted((arc / "releases" / "r1" / "shards").iterdir())[0]
    stray = shard / "data" / "stray.mp3"
    stray.write_bytes(b"not part of the release")
    report = run_verify(arc, "releases", workers=1)
    assert {(p.path, p.kind) for p in report.damaged} >= {(str(stray), "extra")}
    with Archive.open(arc) as archive:
        result = repair(archive)
    assert result.exit_code == 0 and not stray.exists()
    kept = [p for p in (arc / "store" / "damaged" / "releases").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == [b"not part of the release"]
    assert run_verify(arc, workers=1).exit_code == 0
    assert hashes(arc) == before
