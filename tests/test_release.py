"""Release: BagIt shards, torrents that libtorrent and transmission accept, reproducible and
incremental builds, withdrawals, restore patches the zstd CLI applies, a real download."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import bagit
import libtorrent as lt
import pytest

import torrent_peers as peers
from archive_fixture import SEED, TRACKS, planned_archive
from musicark.archive import Archive
from musicark.errors import BadQuery
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import sha256_file
from musicark.release import ReleaseOptions, create_release, withdraw
from musicark.synth_audio import write_audio
from musicark.verify.shard import validate_bag
from torrent_peers import transfer

OPTIONS = ReleaseOptions(buckets="50,20,0", max_files=8)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive with 8 matched files, a plan (originals and Opus), encodes and tags."""
    return planned_archive(tmp_path_factory.mktemp("release-base"))


def _copy(base: Path, dest: Path) -> Archive:
    shutil.copytree(base, dest)
    return Archive.open(dest)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _shards(release: Path) -> list[Path]:
    return sorted((release / "shards").iterdir())


def test_shards_are_valid_bags_and_tampering_is_caught(base: Path, tmp_path: Path) -> None:
    archive = _copy(base, tmp_path / "a")
    report = create_release(archive, "r1", ReleaseOptions(buckets="50,20,0", all_matched=True))
    release = Path(report.path)
    assert report.selection["files"] == 8 and report.copied == 0
    for shard in _shards(release):
        bag = bagit.Bag(str(shard))
        bag.validate()
        ours = validate_bag(shard, workers=1)  # and ours, to the letter: not even a warning
        assert not ours.problems, [p.line() for p in ours.problems]
        lines = [json.loads(x) for x in (shard / "files.jsonl").read_text().splitlines()]
        assert {x["path"] for x in lines} == set(bag.payload_entries())
        for x in lines:  # payload files are hardlinks into the store
            payload = shard / x["path"]
            assert payload.stat().st_nlink >= 2 and sha256_file(payload)[0] == x["sha256"]
            assert x["tracks"] and x["tracks"][0]["track"].startswith("track:")
    tampered = tmp_path / "tampered"
    shutil.copytree(_shards(release)[0], tampered)  # a byte copy: the store stays intact
    victim = next((tampered / "data").rglob("*.*"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(tampered)).validate()


def _v1_part(torrent: Path, out: Path) -> tuple[Path, str]:
    """The v1 torrent inside a hybrid one (without the v2 `file tree`, `meta version` and
    `piece layers`: the same files, pad files and pieces) and its infohash."""
    meta = lt.bdecode(torrent.read_bytes())
    meta.pop(b"piece layers")
    info = {k: v for k, v in meta[b"info"].items() if k not in (b"file tree", b"meta version")}
    meta[b"info"] = info
    path = out / f"{torrent.stem}.v1.torrent"
    path.write_bytes(lt.bencode(meta))
    return path, hashlib.sha1(lt.bencode(info)).hexdigest()


def _transmission_major() -> int:
    shown = subprocess.run(["transmission-show", "--version"], capture_output=True, text=True)
    words = (shown.stdout + shown.stderr).split()
    return int(words[1].split(".")[0]) if len(words) > 1 else 0


@pytest.mark.parametrize("hybrid", [True, False])
def test_torrents_recheck_complete_and_transmission_parses_them(base: Path, tmp_path: Path,
                                                               hybrid: bool) -> None:
    archive = _copy(base, tmp_path / "a")
    options = ReleaseOptions(buckets="50,20,0", max_files=8, hybrid=hybrid)
    release = Path(create_release(archive, "r1", options).path)
    listing = json.loads((release / "torrents.json").read_text())["torrents"]
    assert any(t["metadata"] for t in listing) and len(listing) >= 3
    session = peers.session()
    handles = []
    for t in listing:
        info = lt.torrent_info(str(release / t["torrent"]))
        v2 = str(info.info_hashes().v2) if hybrid else None
        assert (str(info.info_hashes().v1), v2) == (t["btih"], t["btmh"])
        save = release / ("metadata" if t["metadata"] else "shards")
        handles.append(peers.add(session, info, save))
        shown, btih = release / t["torrent"], t["btih"]
        if hybrid:  # the published hashes are those of the info dict's exact bytes
            raw = lt.bdecode(shown.read_bytes())[b"info"]
            assert hashlib.sha1(lt.bencode(raw)).hexdigest() == t["btih"]
            assert hashlib.sha256(lt.bencode(raw)).hexdigest() == t["btmh"]
        if hybrid and _transmission_major() < 4:
            # Debian 12's clients predate BitTorrent v2: Transmission 3.00 rejects every
            # hybrid torrent (its issue #3386) and aria2 1.36 computes a wrong v1 infohash
            # for them. They read the torrent's v1 part instead, as a v1-only client does.
            shown, btih = _v1_part(shown, tmp_path)
        said = subprocess.run(["aria2c", "-S", str(shown)], capture_output=True, text=True,
                              check=True).stdout
        assert f"Name: {t['name']}" in said and f"Info Hash: {btih}" in said
        said = subprocess.run(["transmission-show", str(shown)], capture_output=True,
                              text=True, check=True).stdout
        assert f"Name: {t['name']}" in said and f"Hash: {btih}" in said, said
        listed = {line.strip().rsplit(" (", 1)[0] for line in said.split("FILES", 1)[1]
                  .splitlines() if line.strip()}
        on_disk = {str(p.relative_to(save)) for p in (save / t["name"]).rglob("*")
                   if p.is_file()}
        assert {p for p in listed if "/.pad/" not in p} == on_disk  # every file, no other
    deadline = time.monotonic() + 60
    while not all(h.status().is_seeding for h in handles):
        assert time.monotonic() < deadline, [h.status().state for h in handles]
        time.sleep(0.1)
    assert all(h.status().progress == 1.0 for h in handles)


def test_build_is_byte_reproducible(base: Path, tmp_path: Path) -> None:
    first = _copy(base, tmp_path / "a")
    second = _copy(base, tmp_path / "b")
    options = ReleaseOptions(buckets="50,20,0", max_files=8, web_seeds=("https://m.example/",))
    one = create_release(first, "r1", options, out=tmp_path / "out1")
    two = create_release(second, "r1", options, out=tmp_path / "out2")
    files_one, files_two = _files(Path(one.path)), _files(Path(two.path))
    assert files_one.keys() == files_two.keys() and files_one == files_two
    assert any(k.endswith(".torrent") for k in files_one)
    # --date writes dates (bag-info's Bagging-Date, torrents' creation date, "added").
    dated = _copy(base, tmp_path / "c")
    from datetime import date

    three = create_release(dated, "r1", ReleaseOptions(
        buckets="50,20,0", max_files=8, web_seeds=("https://m.example/",),
        on=date(2026, 11, 25)), out=tmp_path / "out3")
    assert [t["added"] for t in three.torrents] == ["2026-11-25"] * len(one.torrents)
    assert three.torrents[-1]["btih"] == one.torrents[-1]["btih"]  # the snapshot's
    assert _files(Path(three.path)) != files_one


def test_incremental_release_keeps_earlier_shards(base: Path, tmp_path: Path) -> None:
    archive = _copy(base, tmp_path / "a")
    options = ReleaseOptions(buckets="50,20,0", all_matched=True)
    first = create_release(archive, "r1", options)
    before = _files(Path(first.path))
    with pytest.raises(BadQuery, match="nothing new"):
        create_release(archive, "r2", options)
    music = write_audio(tmp_path / "more", 12, seed=SEED, catalog_tracks=TRACKS)
    assert ingest(archive, music, workers=2).matched >= 4
    second = create_release(archive, "r2", options)
    assert _files(Path(first.path)) == before
    listing = json.loads((Path(second.path) / "torrents.json").read_text())["torrents"]
    earlier = [t for t in listing if t["release"] == "r1"]
    assert [t["btih"] for t in earlier] == [t["btih"] for t in first.torrents]
    assert len({t["name"] for t in listing}) == len(listing)
    tracks = archive.conn.execute(
        "SELECT track_rowid, count(*) FROM release_tracks GROUP BY 1 HAVING count(*) > 1")
    assert tracks.fetchall() == []
    assert second.selection["files"] == 4


def test_withdrawn_items_never_enter_new_shards(base: Path, tmp_path: Path) -> None:
    archive = _copy(base, tmp_path / "a")
    rows = archive.conn.execute(
        "SELECT tf.track_rowid, f.sha256 FROM track_files tf JOIN files f "
        "ON f.rowid = tf.file_rowid ORDER BY tf.track_rowid").fetchall()
    track, _ = rows[0]
    _, sha = rows[1]
    report = withdraw(archive, f"track:{track}", "rights holder request")
    assert report["withdrawn"] == [f"track:{track}"]
    report = withdraw(archive, sha, "damaged source")
    assert report["withdrawn"][0].startswith("file:")
    released = create_release(archive, "r1", ReleaseOptions(buckets="50,20,0",
                                                            all_matched=True))
    jsonl = "".join((s / "files.jsonl").read_text() for s in _shards(Path(released.path)))
    assert f'"track:{track}"' not in jsonl and sha not in jsonl
    assert released.selection["files"] == 6
    kinds = {k for (k,) in archive.conn.execute("SELECT kind FROM tombstones")}
    assert kinds == {"track", "file"}
    # Withdrawing something already published names the torrents that still carry it.
    _, other = rows[3]
    again = withdraw(archive, other, "late request")
    assert again["still_in_published_torrents"]
    with pytest.raises(BadQuery):
        withdraw(archive, other, " ")


def test_restore_patches_apply_with_the_zstd_cli(base: Path, tmp_path: Path) -> None:
    archive = _copy(base, tmp_path / "a")
    release = Path(create_release(archive, "r1", OPTIONS).path)
    restored = 0
    for shard in _shards(release):
        for line in (shard / "files.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if not entry["restore"]:
                continue
            out = tmp_path / "restored"
            subprocess.run(["zstd", "-q", "-d", "-f", f"--patch-from={shard / entry['path']}",
                            str(shard / entry["restore"]["patch"]), "-o", str(out)], check=True)
            assert sha256_file(out)[0] == entry["restore"]["sha256"]
            restored += 1
    assert restored == 8


def test_a_real_download_between_two_sessions(base: Path, tmp_path: Path) -> None:
    archive = _copy(base, tmp_path / "a")
    release = Path(create_release(archive, "r1", OPTIONS).path)
    shard = _shards(release)[0]
    empty = tmp_path / "download"
    empty.mkdir()
    transfer(release / "torrents" / f"{shard.name}.torrent", shard.parent, empty)
    got = _files(empty / shard.name)
    assert got == _files(shard) and len(got) > 4


def test_cli_release_withdraw_and_list(base: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from musicark.cli import app

    root = tmp_path / "a"
    shutil.copytree(base, root)
    runner = CliRunner()
    args = ["--archive", str(root), "--json"]
    track = Archive.open(root).conn.execute(
        "SELECT min(track_rowid) FROM track_files").fetchone()[0]
    result = runner.invoke(app, ["withdraw", f"track:{track}", "--reason", "test", *args])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["release", "create", "r1", "--buckets", "50,20,0", "--all",
                                 "--verify", *args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["selection"]["files"] == 7 and report["torrents"][-1]["metadata"]
    again = runner.invoke(app, ["release", "create", "r1", *args])
    assert again.exit_code == 2 and "exists" in again.output
    listed = json.loads(runner.invoke(app, ["release", "list", *args]).stdout)
    assert {t["torrent"] for t in listed} == {t["name"] for t in report["torrents"]}
    bad = runner.invoke(app, ["release", "create", "r2", "--piece-size", "3KiB", *args])
    assert bad.exit_code == 2 and "piece-size" in bad.output


def test_a_killed_build_resumes_with_its_finished_shards(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import musicark.release.build as build

    archive = _copy(base, tmp_path / "a")
    clean = create_release(_copy(base, tmp_path / "b"), "r1", OPTIONS, out=tmp_path / "clean")
    real, calls = build.shard_torrent, []

    def dies_on_the_second_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "shard_torrent", dies_on_the_second_shard)
    with pytest.raises(KeyboardInterrupt):
        create_release(archive, "r1", OPTIONS)
    releases = archive.path / "releases"
    assert not (releases / "r1").exists() and (releases / ".r1.partial").is_dir()
    assert archive.conn.execute("SELECT count(*) FROM torrents").fetchone()[0] == 0
    monkeypatch.setattr(build, "shard_torrent", real)
    report = create_release(archive, "r1", OPTIONS)
    assert report.resumed_shards == 1 and len(report.torrents) == len(clean.torrents)
    assert [p.name for p in releases.iterdir()] == ["r1"]
    assert _files(releases / "r1") == _files(Path(clean.path))  # as if never killed
    # A partial directory of other shards (another plan or options) is not reused.
    other = _copy(base, tmp_path / "c")
    (other.path / "releases" / ".r1.partial" / "torrents").mkdir(parents=True)
    (other.path / "releases" / ".r1.partial" / ".shards.sha256").write_text("not this plan")
    assert create_release(other, "r1", OPTIONS).resumed_shards == 0


def test_verify_stops_on_a_store_file_that_lost_its_bytes(base: Path, tmp_path: Path) -> None:
    from musicark.errors import FixityError
    from musicark.ingest.store import Store

    archive = _copy(base, tmp_path / "a")
    # A file the release ships for sure: the tagged copy of an original (all_matched ships
    # originals, tagged where `tag` made a copy). Not "the first matched file": ledger rowids
    # follow the order in which ingest workers finish. Not "the first tagged copy" either:
    # that may be the tagged copy of an Opus encode, which all_matched does not ship.
    sha = archive.conn.execute(
        "SELECT o.sha256 FROM derivations d JOIN files o ON o.rowid = d.output_file "
        "WHERE d.kind = 'tagged' AND NOT EXISTS (SELECT 1 FROM derivations e "
        "  WHERE e.output_file = d.input_file AND e.input_file != e.output_file) "
        "ORDER BY o.sha256 LIMIT 1").fetchone()[0]
    path = Store(archive.store_path).path_for(sha)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    options = ReleaseOptions(buckets="50,20,0", all_matched=True, verify=True)
    with pytest.raises(FixityError, match=sha):
        create_release(archive, "r1", options)
    assert not (archive.path / "releases" / "r1").exists()
