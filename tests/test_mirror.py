"""Mirrors: publisher archive → release → shards copied elsewhere (one damaged, one partial)
→ `mirror import` → every track findable, every file byte-identical, verify clean; two
mirrors agree; a mirror's own release reproduces the publisher's infohashes; a real
BitTorrent transfer between two libtorrent sessions, then an import of what arrived."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive_fixture import SEED, TRACKS
from mirror_fixture import NAME, OPTIONS, publish
from mirror_fixture import entries as _entries
from mirror_fixture import fetched as _fetched
from mirror_fixture import shards as _shards
from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.search import search
from musicark.ingest.store import Store, sha256_file
from musicark.mirror import import_mirror, mirror_status
from musicark.release import ReleaseOptions, create_release
from musicark.synth import write_catalog
from musicark.verify import run_verify
from torrent_peers import transfer


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return publish(tmp_path_factory.mktemp("mirror-pub"))


def _damage(shard: Path) -> None:
    victim = shard / _entries(shard)[0]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))


def _make_partial(shard: Path) -> None:
    """A download in progress: one payload file not there yet, another preallocated by the
    client with its last piece still zeros."""
    entries = _entries(shard)
    assert len(entries) >= 2
    (shard / entries[0]["path"]).unlink()
    listing = json.loads((shard.parent.parent / "torrents.json").read_text())["torrents"]
    piece = next(t["piece_length"] for t in listing if t["name"] == shard.name)
    second = shard / entries[1]["path"]
    data = bytearray(second.read_bytes())
    last = (len(data) - 1) // piece * piece
    data[last:] = bytes(len(data) - last)
    second.write_bytes(bytes(data))


def test_import_skips_damaged_and_partial_shards_and_the_rest_works(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    publisher, release = published
    fetched = _fetched(release, tmp_path / "downloads" / "r1")
    shards = _shards(fetched)
    assert len(shards) >= 4
    _damage(shards[0])
    _make_partial(shards[1])
    (shards[2] / "bagit.txt").unlink()  # just started: not even a bag yet
    with Archive.create(tmp_path / "mirror", name=NAME) as mirror:
        report = import_mirror(mirror, [fetched])
        states = {s.name: s for s in report.shards}
        assert states[shards[0].name].state == "damaged"
        partial = states[shards[1].name]
        assert partial.state == "incomplete", "\n".join(partial.problems)
        assert 0 < partial.files_good < partial.files_total
        assert 0 < partial.bytes_good < partial.bytes_total
        assert (states[shards[2].name].state, states[shards[2].name].files_good) == \
            ("incomplete", 0)
        assert all(states[s.name].state == "verified" for s in shards[3:])
        assert report.exit_code == 1 and report.releases["r1"]["catalog"] == "snapshot"
        held = [e for s in shards[3:] for e in _entries(s)]
        store, pub_store = Store(mirror.store_path), Store(publisher / "store")
        for e in held:  # byte-identical, and the shard's file is the store's inode
            stored = store.path_for(e["sha256"])
            assert stored.read_bytes() == pub_store.path_for(e["sha256"]).read_bytes()
            assert stored.stat().st_ino == (fetched / "shards" / _shard_of(shards, e) /
                                            e["path"]).stat().st_ino
            row = mirror.conn.execute("SELECT provenance, licence, status FROM files WHERE "
                                      "sha256 = ?", (e["sha256"],)).fetchone()
            assert row[0].startswith("release r1, shard ") and e["path"] in row[0]
            assert row[2] == "ok"
        for e in [e for s in shards for e in _entries(s)]:  # every track is findable
            for t in e["tracks"]:
                hits = search(mirror, t["title"], limit=100)
                assert int(t["track"].split(":")[1]) in {h["rowid"] for h in hits}, t
        for e in held:  # and the held ones have their file
            for t in e["tracks"]:
                assert mirror.conn.execute(
                    "SELECT count(*) FROM track_files tf JOIN files f ON f.rowid = "
                    "tf.file_rowid WHERE tf.track_rowid = ? AND f.sha256 = ?",
                    (int(t["track"][6:]), e["sha256"])).fetchone()[0] == 1
        damaged = [e["sha256"] for e in _entries(shards[0])]
        assert mirror.conn.execute(
            f"SELECT count(*) FROM files WHERE sha256 IN ({','.join('?' * len(damaged))})",
            damaged).fetchone()[0] == 0
        status = mirror_status(mirror)["releases"][0]
        assert status["counts"] == {"damaged": 1, "incomplete": 2,
                                    "verified": len(shards) - 3}
        assert 0 < status["listens_covered"] < status["listens_total"]
    assert run_verify(tmp_path / "mirror", "all").exit_code == 0
    _served(tmp_path / "mirror", held)

    # The shards finish (fetched again): a rerun imports them, leaves the others alone.
    for shard in shards[:3]:
        shutil.rmtree(shard)
        shutil.copytree(release / "shards" / shard.name, shard)
    with Archive.open(tmp_path / "mirror") as mirror:
        again = import_mirror(mirror, [fetched])
        assert {s.state for s in again.shards} == {"verified", "unchanged"}
        assert again.count("verified") == 3 and again.exit_code == 0
        status = mirror_status(mirror)
        assert status["releases"][0]["listens_share"] == 1.0 and status["fetch"] is None
    assert run_verify(tmp_path / "mirror", "all").exit_code == 0


def _served(root: Path, held: list[dict]) -> None:
    """The web app shows each held track with its file and streams the file's bytes."""
    from fastapi.testclient import TestClient

    from musicark.serve.app import create_app

    with TestClient(create_app(root)) as client:
        for e in held[:3]:
            rowid = int(e["tracks"][0]["track"][6:])
            track = client.get(f"/api/v1/tracks/{rowid}")
            assert track.status_code == 200, track.text
            assert e["sha256"] in json.dumps(track.json())
            audio = client.get(f"/api/v1/files/{e['sha256']}/audio")
            assert audio.status_code == 200 and len(audio.content) == e["size"]


def _shard_of(shards: list[Path], entry: dict) -> str:
    return next(s.name for s in shards if (s / entry["path"]).exists()
                and entry in _entries(s))


CATALOG_TABLES = {
    "sources": "SELECT id, name, kind, licence FROM sources",
    "tracks": "SELECT rowid, source_id, ext_id, name, album_rowid, isrc, popularity FROM tracks",
    "albums": "SELECT rowid, ext_id, name FROM albums",
    "artists": "SELECT rowid, ext_id, name FROM artists",
    "track_artists": "SELECT * FROM track_artists",
    "files": "SELECT rowid, sha256, size, container, codec, licence, provenance, status "
             "FROM files",
    "track_files": "SELECT * FROM track_files",
    "derivations": "SELECT input_file, kind, output_file, params, patch_file FROM derivations",
    "plans": "SELECT id, options FROM plans",
    "plan_items": "SELECT * FROM plan_items",
}


def _catalog(archive: Archive) -> dict[str, list]:
    return {name: sorted(archive.conn.execute(sql).fetchall(), key=repr)
            for name, sql in CATALOG_TABLES.items()}


def _store(root: Path) -> set[str]:
    return {p.name for p in (root / "store" / "sha256").glob("*/*/*")}


def test_two_mirrors_agree_and_a_mirror_release_reproduces_the_infohashes(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    base, _ = published
    publisher = tmp_path / NAME
    shutil.copytree(base, publisher)
    shutil.rmtree(publisher / "releases")
    options = ReleaseOptions(buckets="50,20,0", max_files=4, all_matched=True)
    with Archive.open(publisher) as pub:  # originals and tagged copies (restore patches)
        pub.conn.execute("DELETE FROM release_tracks")
        pub.conn.execute("DELETE FROM release_files")
        pub.conn.execute("DELETE FROM torrents")
        pub.conn.execute("DELETE FROM releases")
        release = Path(create_release(pub, "r1", options).path)
    assert any(e["restore"] for s in _shards(release) for e in _entries(s))
    one = _fetched(release, tmp_path / "one" / "r1")
    two = _fetched(release, tmp_path / "two" / "r1")
    with Archive.create(tmp_path / "m1", name=NAME) as m1:
        assert import_mirror(m1, [one], restore_originals=True).exit_code == 0
        first = _catalog(m1)
    with Archive.create(tmp_path / "m2", name=NAME) as m2:
        # Another order: single shards first (newest first), then the whole release.
        for shard in reversed(_shards(two)):
            import_mirror(m2, [shard], restore_originals=True)
        assert import_mirror(m2, [two], restore_originals=True).exit_code == 0
        second = _catalog(m2)
    assert first == second and first["files"] and first["derivations"]
    shipped = set()
    for shard in _shards(release):
        for e in _entries(shard):
            shipped |= {e["sha256"]} | {v for k, v in (e["restore"] or {}).items()
                                        if k != "patch"}
    assert _store(tmp_path / "m1") == _store(tmp_path / "m2") == shipped
    for root in (tmp_path / "m1", tmp_path / "m2"):
        assert run_verify(root, "all").exit_code == 0

    with Archive.open(tmp_path / "m1") as m1:
        again = Path(create_release(m1, "r1", options).path)
    theirs = json.loads((release / "torrents.json").read_text())["torrents"]
    ours = json.loads((again / "torrents.json").read_text())["torrents"]
    pick = ("name", "btih", "btmh", "data_size", "num_files")
    assert [{k: t[k] for k in pick} for t in ours if not t["metadata"]] == \
        [{k: t[k] for k in pick} for t in theirs if not t["metadata"]]


@pytest.mark.parametrize("restore", [True, False])
def test_a_plan_with_opus_tracks_reproduces_without_their_originals(
        published: tuple[Path, Path], tmp_path: Path, restore: bool) -> None:
    """An opus75 track ships its encode, not its original: the mirror records the original
    as known but not held (status 'absent', facts from the snapshot), so its derivation and
    track link stay whole, and the mirror's own release of the same plan ships the same
    files: the same infohashes, with or without the untagged files restored."""
    _, release = published
    opus = [e for s in _shards(release) for e in _entries(s) if e["tier"] == "opus75"]
    assert opus
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        import_mirror(mirror, [_fetched(release, tmp_path / "dl" / "r1")],
                      restore_originals=restore)
        absent = {sha for (sha,) in mirror.conn.execute(
            "SELECT sha256 FROM files WHERE status = 'absent'")}
        assert {e["source_sha256"] for e in opus} <= absent
        assert not any(Store(mirror.store_path).has(sha) for sha in absent)
        again = Path(create_release(mirror, "r1", OPTIONS).path)
        checked = run_verify(tmp_path / "m", "all")
        assert checked.exit_code == 0, checked.problems
    theirs = json.loads((release / "torrents.json").read_text())["torrents"]
    ours = json.loads((again / "torrents.json").read_text())["torrents"]
    pick = ("name", "btih", "btmh", "data_size", "num_files")
    assert [{k: t[k] for k in pick} for t in ours if not t["metadata"]] == \
        [{k: t[k] for k in pick} for t in theirs if not t["metadata"]]


def test_without_the_snapshot_a_minimal_catalog_then_the_snapshot_fills_it_in(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    publisher, release = published
    fetched = _fetched(release, tmp_path / "dl" / "r1")
    metadata = tmp_path / "later"
    shutil.move(fetched / "metadata", metadata)
    shards = _shards(fetched)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [fetched / "shards"], copy=True)
        assert report.exit_code == 0 and report.releases["r1"]["catalog"] == "minimal"
        assert sum(s.linked for s in report.shards) == 0
        assert sum(s.copied for s in report.shards) == sum(s.new_files for s in report.shards)
        e = _entries(shards[0])[0]
        stored = Store(mirror.store_path).path_for(e["sha256"])
        assert stored.stat().st_ino != (shards[0] / e["path"]).stat().st_ino
        assert stored.read_bytes() == (shards[0] / e["path"]).read_bytes()
        assert mirror.conn.execute("SELECT container FROM files WHERE sha256 = ?",
                                   (e["sha256"],)).fetchone()[0]  # probed: no snapshot
        assert {r[0] for r in mirror.conn.execute("SELECT kind FROM sources")} == {"minimal"}
        named = {(t["track"], t["title"], t["isrc"]) for s in shards for e in _entries(s)
                 for t in e["tracks"]}
        rows = {(f"track:{r[0]}", r[1], r[2]) for r in
                mirror.conn.execute("SELECT rowid, name, isrc FROM tracks")}
        assert rows == named
        for ref, title, _ in named:
            assert int(ref[6:]) in {h["rowid"] for h in search(mirror, title, limit=100)}
        assert mirror_status(mirror)["releases"][0]["catalog"] == "minimal"
    shutil.move(metadata, fetched / "metadata")  # the metadata torrent finished
    with Archive.open(tmp_path / "m") as mirror:
        report = import_mirror(mirror, [fetched])
        assert report.releases["r1"]["catalog"] == "snapshot"
        assert {s.state for s in report.shards} == {"unchanged"}
        with Archive.open(publisher, readonly=True) as pub:
            want = pub.conn.execute("SELECT rowid, ext_id, name, album_rowid, isrc FROM tracks "
                                    "ORDER BY rowid").fetchall()
        assert mirror.conn.execute("SELECT rowid, ext_id, name, album_rowid, isrc FROM tracks "
                                   "ORDER BY rowid").fetchall() == want
        assert "minimal" not in {r[0] for r in mirror.conn.execute("SELECT kind FROM sources")}
        title = want[len(want) // 2][2]
        assert want[len(want) // 2][0] in {h["rowid"] for h in search(mirror, title, limit=200)}
    assert run_verify(tmp_path / "m", "all").exit_code == 0


def test_a_real_bittorrent_transfer_then_import(published: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    publisher, release = published
    shard = _shards(release)[0]
    torrent = release / "torrents" / f"{shard.name}.torrent"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    transfer(torrent, shard.parent, downloads)
    shutil.copy(torrent, downloads / torrent.name)  # the .torrent the user opened
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [downloads])
        (got,) = report.shards
        assert (got.name, got.release, got.state) == (shard.name, "r1", "verified")
        assert got.torrent == str(downloads / torrent.name)
        store = Store(mirror.store_path)
        for e in _entries(shard):
            assert sha256_file(store.path_for(e["sha256"]))[0] == e["sha256"]
            assert (downloads / shard.name / e["path"]).stat().st_ino == \
                store.path_for(e["sha256"]).stat().st_ino  # the client seeds the same inode
    assert run_verify(tmp_path / "m", "all").exit_code == 0


def test_cli_import_and_status(published: tuple[Path, Path], tmp_path: Path) -> None:
    from musicark.cli import app

    _, release = published
    fetched = _fetched(release, tmp_path / "dl" / "r1")
    shards = _shards(fetched)
    _damage(shards[-1])
    runner = CliRunner()
    mirror = tmp_path / "m"
    result = runner.invoke(app, ["mirror", "import", str(fetched), "-a", str(mirror), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["damaged"] == 1 and report["counts"]["verified"] == len(shards) - 1
    result = runner.invoke(app, ["mirror", "import", str(fetched), "-a", str(mirror)])
    assert result.exit_code == 1 and "damaged" in result.stdout and "unchanged" in result.stdout
    assert shards[-1].name in result.stderr
    status = runner.invoke(app, ["mirror", "status", "-a", str(mirror), "--json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert [p["name"] for p in data["fetch"]["picks"]] == [shards[-1].name]
    table = runner.invoke(app, ["mirror", "status", "-a", str(mirror)])
    assert "fetch next" in table.stdout and "magnet:?" in table.stdout
    missing = runner.invoke(app, ["mirror", "import", str(tmp_path / "nowhere"),
                                  "-a", str(mirror)])
    assert missing.exit_code == 2 and "not a directory" in missing.stderr
    title = _entries(shards[0])[0]["tracks"][0]["title"]
    found = runner.invoke(app, ["search", title, "-a", str(mirror), "--json"])
    assert found.exit_code == 0 and title in found.stdout
    with Archive.open(mirror) as arc:  # a new archive takes the publisher's name
        assert arc.settings.name == NAME


def test_a_symbolic_link_in_a_shard_is_damage(published: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    """Even one pointing at the right bytes: registering it would link (and make read-only)
    whatever file it points at."""
    _, release = published
    fetched = _fetched(release, tmp_path / "dl" / "r1")
    shard = _shards(fetched)[0]
    victim = shard / _entries(shard)[0]["path"]
    outside = tmp_path / "elsewhere.bin"
    shutil.move(victim, outside)
    victim.symlink_to(outside)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [shard])
        assert report.shards[0].state == "damaged"
        assert any("symbolic link" in p for p in report.shards[0].problems)
    assert outside.stat().st_mode & 0o200  # untouched


def test_into_an_archive_with_its_own_catalog_tracks_merge_by_source_and_id(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    publisher, release = published
    catalog = tmp_path / "catalog.csv"
    write_catalog(catalog, TRACKS, seed=SEED)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        mirror.conn.execute("INSERT INTO sources(name, kind, status) VALUES ('other', 'x', "
                            "'complete')")  # shifts every id this archive gives
        import_source(mirror, "table", catalog)
        own = dict(mirror.conn.execute("SELECT ext_id, rowid FROM tracks"))
        before = mirror.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        report = import_mirror(mirror, [_fetched(release, tmp_path / "dl" / "r1")])
        assert report.exit_code == 0 and report.releases["r1"]["merged"]["tracks"] == 0
        assert mirror.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == before
        assert dict(mirror.conn.execute("SELECT ext_id, rowid FROM tracks")) == own
        for shard in _shards(release):
            for e in _entries(shard):
                for t in e["tracks"]:  # linked to this archive's own track
                    assert mirror.conn.execute(
                        "SELECT count(*) FROM track_files tf JOIN files f ON f.rowid = "
                        "tf.file_rowid WHERE tf.track_rowid = ? AND f.sha256 = ?",
                        (own[t["ext_id"]], e["sha256"])).fetchone()[0] == 1
        again = import_mirror(mirror, [tmp_path / "dl" / "r1"], recheck=True)
        assert again.exit_code == 0
        assert mirror.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == before
    assert run_verify(tmp_path / "m", "all").exit_code == 0


def test_status_tells_present_missing_and_what_to_fetch(published: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    _, release = published
    fetched = _fetched(release, tmp_path / "dl" / "r1")
    shards = _shards(fetched)
    shutil.rmtree(shards[-1])  # not fetched at all
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        assert import_mirror(mirror, [shards[0]]).exit_code == 0  # one shard, in its release
        status = mirror_status(mirror, max_bytes=1.0)
        (r1,) = status["releases"]
        states = {s["name"]: s["state"] for s in r1["shards"]}
        assert states[shards[0].name] == "verified" and states[shards[-1].name] == "missing"
        assert {states[s.name] for s in shards[1:-1]} == {"present"}
        assert status["fetch"]["bytes"] <= 1 or status["fetch"]["torrents"] <= 1
        everything = mirror_status(mirror)["fetch"]
        assert {p["name"] for p in everything["picks"]} == {s.name for s in shards[1:]}


def test_new_rows_whose_rowids_are_taken_get_new_ones(published: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    _, release = published
    other = tmp_path / "other.csv"
    write_catalog(other, 500, seed=99)  # another catalog holds rowids 1..500
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        import_source(mirror, "table", other)
        before = mirror.conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        report = import_mirror(mirror, [_fetched(release, tmp_path / "dl" / "r1")])
        added = report.releases["r1"]["merged"]["tracks"]
        assert report.exit_code == 0 and added == TRACKS
        assert mirror.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == before + added
        for shard in _shards(release):
            for e in _entries(shard):
                for t in e["tracks"]:
                    rowid = mirror.conn.execute(
                        "SELECT t.rowid FROM tracks t JOIN sources s ON s.id = t.source_id "
                        "JOIN track_files tf ON tf.track_rowid = t.rowid JOIN files f "
                        "ON f.rowid = tf.file_rowid WHERE t.ext_id = ? AND f.sha256 = ?",
                        (t["ext_id"], e["sha256"])).fetchone()
                    assert rowid is not None, t
                    assert rowid[0] in {h["rowid"] for h in search(mirror, t["title"],
                                                                   limit=200)}
                    artists = mirror.conn.execute(
                        "SELECT count(*) FROM track_artists ta JOIN artists a ON a.rowid = "
                        "ta.artist_rowid WHERE ta.track_rowid = ?", rowid).fetchone()[0]
                    assert artists >= 1
    assert run_verify(tmp_path / "m", "all").exit_code == 0


def test_an_absent_original_ingested_later_is_held(published: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """A mirror that later gets an original it knew only by SHA-256 (from the publisher,
    say) ingests it: the ledger row turns ok, the store holds it, verify stays clean."""
    publisher, release = published
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        import_mirror(mirror, [_fetched(release, tmp_path / "dl" / "r1")])
        sha = mirror.conn.execute("SELECT sha256 FROM files WHERE status = 'absent' "
                                  "ORDER BY sha256 LIMIT 1").fetchone()[0]
        found = tmp_path / "found"
        found.mkdir()
        shutil.copyfile(Store(publisher / "store").path_for(sha), found / "original.bin")
        from musicark.ingest.pipeline import ingest

        ingest(mirror, [found], workers=1, match=False)
        assert mirror.conn.execute("SELECT status FROM files WHERE sha256 = ?",
                                   (sha,)).fetchone()[0] == "ok"
        assert Store(mirror.store_path).has(sha)
    assert run_verify(tmp_path / "m", "all").exit_code == 0
