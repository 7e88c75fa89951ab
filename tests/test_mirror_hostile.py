"""A stranger's release (issue #20): every field of a shard, files.jsonl, torrents.json and
the snapshot is hostile. Each trick is refused in one line; nothing is written or read
outside the archive and the shard."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import musicark
from mirror_fixture import NAME, entries, fetched, publish, shards
from musicark.archive import Archive
from musicark.cli import app
from musicark.errors import BadQuery
from musicark.ingest.store import Store
from musicark.mirror import import_mirror
from musicark.release import ReleaseOptions
from musicark.serve import create_app
from musicark.serve.subsonic.users import Users
from musicark.trust import Refused

PASSWD = Path("/etc/passwd")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # one file a shard: a shard for each trick
    return publish(tmp_path_factory.mktemp("hostile-pub"),
                   ReleaseOptions(buckets="50,20,0", max_files=1))


def write_entries(shard: Path, records: list[dict]) -> None:
    (shard / "files.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n"
                                               for r in records), encoding="utf-8")


def rebag(shard: Path, payload: str = "sha256", tags: str = "sha256") -> None:
    """Manifests made again for what the shard holds now, as an attacker would: a payload
    manifest in `payload`, a tag manifest in `tags`, nothing else."""
    for old in [*shard.glob("manifest-*.txt"), *shard.glob("tagmanifest-*.txt")]:
        old.unlink()
    files = sorted(p for p in shard.rglob("*") if p.is_file())

    def line(path: Path, algorithm: str) -> str:
        return f"{hashlib.new(algorithm, path.read_bytes()).hexdigest()}  " \
               f"{path.relative_to(shard).as_posix()}\n"

    (shard / f"manifest-{payload}.txt").write_text(
        "".join(line(p, payload) for p in files if p.relative_to(shard).parts[0] == "data"))
    (shard / f"tagmanifest-{tags}.txt").write_text(
        "".join(line(p, tags) for p in sorted(p for p in shard.rglob("*") if p.is_file())
                if p.relative_to(shard).parts[0] != "data"))


def lone_shard(release: Path, dest: Path, pick=lambda s: True) -> Path:
    """A copy of one shard of the release on its own (no torrent beside it); `pick` picks
    one whose files.jsonl entries it accepts."""
    source = next(s for s in shards(release) if pick(entries(s)))
    dest.mkdir(parents=True)
    return Path(shutil.copytree(source, dest / source.name))


def _problems(report) -> str:
    return "\n".join(p for s in report.shards for p in s.problems)


def test_a_sha256_naming_a_path_creates_nothing_with_only_a_sha512_manifest(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    shard = lone_shard(release, tmp_path / "dl")
    target = tmp_path / "PWNED"
    records = entries(shard)
    records[0]["sha256"] = str(target)
    write_entries(shard, records)
    rebag(shard, "sha512", "sha512")
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [shard])
        assert report.shards[0].state == "damaged"
        assert "sha256 is not 64 lowercase hex" in _problems(report)
        assert mirror.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0
    assert not target.exists()


def test_a_wrong_sha256_is_caught_by_the_bytes_without_a_sha256_manifest(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    """A well-formed digest that is not the file's: checked against the bytes read."""
    _, release = published
    shard = lone_shard(release, tmp_path / "dl")
    records = entries(shard)
    records[0]["sha256"] = "0" * 64
    write_entries(shard, records)
    rebag(shard, "sha512", "sha512")
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [shard])
        assert report.shards[0].state == "damaged"
        assert f"files.jsonl line 1 says {'0' * 64}" in _problems(report)
        assert not Store(mirror.store_path).has("0" * 64)


def test_a_patch_sha256_naming_a_path_creates_nothing_without_a_sha256_tag_manifest(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    shard = lone_shard(release, tmp_path / "dl", lambda es: any(e["restore"] for e in es))
    target = tmp_path / "PWNED-patch"
    records = entries(shard)
    next(e for e in records if e["restore"])["restore"]["patch_sha256"] = str(target)
    write_entries(shard, records)
    rebag(shard, "sha256", "sha512")
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [shard])
        assert report.shards[0].state == "damaged"
        assert "restore.patch_sha256 is not 64 lowercase hex" in _problems(report)
    assert not target.exists()


def _served(root: Path) -> TestClient:
    Users(root).add("alice", "secret")
    return TestClient(create_app(root), raise_server_exceptions=False)


def _host_file_served(client: TestClient, track: int, secret: bytes) -> list[str]:
    """The routes that answered with the host file's bytes."""
    leaks = []
    auth = {"u": "alice", "p": "secret", "id": f"tr-{track}", "f": "json"}
    for url, params in (("/rest/stream", auth), ("/rest/download", auth),
                        ("/rest/getCoverArt", auth),
                        (f"/api/v1/tracks/{track}/files", {}), (f"/track/{track}", {})):
        response = client.get(url, params=params)
        assert response.status_code < 500, (url, response.status_code)
        if secret[:64] in response.content:
            leaks.append(url)
    for sha in (str(PASSWD), "%2Fetc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd"):
        for url in (f"/api/v1/files/{sha}/audio", f"/audio/{sha}", f"/api/v1/files/{sha}"):
            response = client.get(url)
            assert response.status_code in (404, 409, 422), (url, response.status_code)
            if secret[:64] in response.content:
                leaks.append(url)
    return leaks


@pytest.mark.skipif(not PASSWD.is_file(), reason="no /etc/passwd on this host")
def test_a_ledger_row_naming_etc_passwd_is_never_served(published: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    """Crafted through mirror import (a files.jsonl entry naming /etc/passwd with its size,
    its tracks kept): refused. Then written into the ledger by hand: the served app still
    never returns the host's file, from Subsonic or the web."""
    _, release = published
    shard = lone_shard(release, tmp_path / "dl")
    secret = PASSWD.read_bytes()
    records = entries(shard)
    records[0].update(sha256=str(PASSWD), size=len(secret))
    write_entries(shard, records)
    rebag(shard, "sha512", "sha512")
    root = tmp_path / "m"
    with Archive.create(root, name=NAME) as mirror:
        report = import_mirror(mirror, [shard])
        assert report.shards[0].state == "damaged"
        assert mirror.conn.execute("SELECT count(*) FROM files WHERE sha256 = ?",
                                   (str(PASSWD),)).fetchone()[0] == 0
    shutil.rmtree(shard.parent)  # the shard as published: imported whole
    shard = lone_shard(release, tmp_path / "dl")
    with Archive.open(root) as mirror:
        assert import_mirror(mirror, [shard]).shards[0].state == "verified"
        track, file = mirror.conn.execute(
            "SELECT tf.track_rowid, tf.file_rowid FROM track_files tf JOIN files f "
            "ON f.rowid = tf.file_rowid WHERE f.status = 'ok' ORDER BY 1 LIMIT 1").fetchone()
        mirror.conn.execute("UPDATE files SET sha256 = ?, size = ? WHERE rowid = ?",
                            (str(PASSWD), len(secret), file))
    with _served(root) as client:
        assert _host_file_served(client, track, secret) == []


def test_the_store_makes_paths_only_from_digests(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    assert store.path_for("ab" * 32).name == "ab" * 32
    for bad in ("/etc/passwd", "../../x", "AB" * 32, "ab" * 31, "ab" * 32 + "\n", "", None):
        with pytest.raises(Refused):
            store.path_for(bad)
        with pytest.raises(ValueError):  # a ValueError for any caller that expects one
            store.path_for(bad)
    assert not os.listdir(tmp_path)


OLD = 946684800  # 2000-01-01: a file read since has a newer access time (relatime)


def bait(path: Path, data: bytes = b"bait") -> Path:
    """A file outside the release whose access time tells whether anything read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def untouched(*paths: Path) -> list[Path]:
    """The baits read (access time moved) or changed since `bait`."""
    return [p for p in paths if os.stat(p, follow_symlinks=False).st_atime != OLD
            or os.stat(p, follow_symlinks=False).st_mtime != OLD]


@pytest.fixture(scope="module", autouse=True)
def _reads_are_seen(tmp_path_factory: pytest.TempPathFactory) -> None:
    control = bait(tmp_path_factory.mktemp("atime") / "control")
    control.read_bytes()
    if os.stat(control).st_atime == OLD:
        pytest.skip("this filesystem does not record reads (noatime)")


def _listing(release: Path) -> dict:
    return json.loads((release / "torrents.json").read_text())


def _relist(release: Path, edit) -> None:
    listing = _listing(release)
    edit(listing["torrents"])
    (release / "torrents.json").write_text(json.dumps(listing))


@pytest.mark.parametrize("torrent", ["ABS", "../../outside.torrent", "torrents/../../x",
                                     "torrents\\x.torrent", "torrents/\0x"])
def test_torrents_json_naming_a_torrent_outside_the_release_is_refused(
        published: tuple[Path, Path], tmp_path: Path, torrent: str) -> None:
    _, release = published
    outside = bait(tmp_path / "outside.torrent", (release / "torrents").glob("*")
                   .__next__().read_bytes())
    copy = fetched(release, tmp_path / "dl" / "r1")
    first = shards(copy)[0].name
    named = str(outside) if torrent == "ABS" else torrent

    def edit(torrents: list[dict]) -> None:
        next(t for t in torrents if t["name"] == first)["torrent"] = named

    _relist(copy, edit)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [copy])
    state = {s.name: s for s in report.shards}[first]
    lines = [*state.problems, *report.releases["r1"]["problems"]]
    assert state.state == "damaged" or report.releases["r1"]["problems"], lines
    assert any("torrent" in line and ("outside" in line or "absolute" in line
                                      or "normalized" in line or "NUL" in line
                                      or "backslash" in line) for line in lines), lines
    assert report.exit_code == 1
    assert untouched(outside) == []


def test_a_metadata_name_leading_to_another_archive_is_not_merged(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    meta = _listing(copy)
    name = next(t["name"] for t in meta["torrents"] if t["metadata"])
    other = tmp_path / "other" / "metadata" / "x"  # another archive's snapshot
    shutil.move(copy / "metadata" / name, other)
    snap = bait(other / "catalog.sqlite.zst")

    def edit(torrents: list[dict]) -> None:
        next(t for t in torrents if t["metadata"])["name"] = "../../../other/metadata/x"

    _relist(copy, edit)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [copy])
        assert report.releases["r1"]["catalog"] == "minimal"
        assert any("torrent entry" in p and "name" in p
                   for p in report.releases["r1"]["problems"]), report.releases
        assert report.exit_code == 1
    assert untouched(snap) == []


def test_a_metadata_folder_linking_elsewhere_is_refused(published: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    (name,) = [p.name for p in (copy / "metadata").iterdir()]
    other = tmp_path / "other" / name
    shutil.move(copy / "metadata" / name, other)
    snap = bait(other / "catalog.sqlite.zst")
    (copy / "metadata" / name).symlink_to(other, target_is_directory=True)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [copy])
        assert report.releases["r1"]["catalog"] == "minimal"
        assert any("leads outside" in p for p in report.releases["r1"]["problems"])
    assert untouched(snap) == []


def test_a_shard_folder_that_links_elsewhere_is_refused(published: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    """Its files would be verified, hardlinked into the store and made read-only."""
    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    victim_shard = shards(copy)[0]
    victim = tmp_path / "home" / "music"
    shutil.move(victim_shard, victim)
    files = [bait(p, b"") for p in victim.rglob("*") if p.is_file()]
    victim_shard.symlink_to(victim, target_is_directory=True)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [copy])
        state = {s.name: s for s in report.shards}[victim_shard.name]
        assert state.state == "damaged" and "symbolic link" in state.problems[0]
        assert len(state.problems) == 1
    assert untouched(*files) == []
    assert all(p.stat().st_nlink == 1 and p.stat().st_mode & 0o200 for p in files)


def _snapshot_release(release: Path, dest: Path, craft) -> tuple[Path, Path]:
    """A fetched copy of the release whose snapshot `craft(path)` rewrote (the metadata
    torrent dropped, as an attacker who controls torrents.json would leave it out):
    (release copy, the snapshot)."""
    copy = fetched(release, dest)
    (snap,) = copy.glob("metadata/*/catalog.sqlite.zst")
    for torrent in (copy / "torrents").glob(f"{snap.parent.name}.torrent"):
        torrent.unlink()
    craft(snap)
    return copy, snap


def _bomb(declare: bool):
    def craft(snap: Path) -> None:
        size = 2 << 30
        zeros = bytes(16 << 20)
        with open(snap, "wb") as fh, zstandard.ZstdCompressor(level=1).stream_writer(
                fh, size=size if declare else -1, closefd=False) as writer:
            for _ in range(size // len(zeros)):
                writer.write(zeros)
        assert snap.stat().st_size < 100_000
    return craft


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "mirror").iterdir()] if (root / "mirror").is_dir() else []


@pytest.mark.parametrize("declare", [False, True], ids=["undeclared", "declared"])
def test_a_snapshot_bomb_stops_at_the_cap_and_leaves_nothing(
        published: tuple[Path, Path], tmp_path: Path, declare: bool) -> None:
    _, release = published
    copy, snap = _snapshot_release(release, tmp_path / "dl" / "r1", _bomb(declare))
    with Archive.create(tmp_path / "m", name=NAME) as mirror, \
            pytest.raises(BadQuery) as refused:
        import_mirror(mirror, [copy])
    message = str(refused.value)
    # Stopped early: at 1000x its compressed size (64 MiB at least), not at 2 GiB.
    assert ("declares 2,147,483,648 bytes, more than" if declare
            else "inflates past 67,108,864 bytes") in message, message
    assert _leftovers(tmp_path / "m") == []


def test_max_snapshot_size_refuses_a_real_snapshot_that_is_larger(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    result = CliRunner().invoke(app, ["mirror", "import", str(copy), "-a",
                                      str(tmp_path / "m"), "--max-snapshot-size", "10KB"])
    assert result.exit_code == 2, result.output
    assert "more than the 10,000 allowed" in result.stderr and "Traceback" not in result.output
    assert _leftovers(tmp_path / "m") == []


def test_free_space_is_checked_before_decompressing(published: tuple[Path, Path],
                                                    tmp_path: Path, monkeypatch) -> None:
    import musicark.verify.snapshot as module

    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    monkeypatch.setattr(module.shutil, "disk_usage",
                        lambda path: shutil._ntuple_diskusage(10**6, 10**6 - 1000, 1000))
    with Archive.create(tmp_path / "m", name=NAME) as mirror, \
            pytest.raises(BadQuery, match="has 1,000 free"):
        import_mirror(mirror, [copy])
    assert _leftovers(tmp_path / "m") == []


def _edit_snapshot(*statements: str):
    def craft(snap: Path) -> None:
        raw = snap.with_suffix(".raw")
        raw.write_bytes(zstandard.ZstdDecompressor().decompressobj().decompress(
            snap.read_bytes()))
        conn = sqlite3.connect(raw, isolation_level=None)
        for statement in statements:
            conn.execute(statement)
        conn.close()
        snap.write_bytes(zstandard.ZstdCompressor().compress(raw.read_bytes()))
        raw.unlink()
    return craft


RECURSIVE_VIEW = ("DROP TABLE files",
                  "CREATE VIEW files AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL "
                  "SELECT n + 1 FROM r) SELECT n AS rowid, n AS sha256 FROM r")
HOSTILE_SCHEMAS = {
    "recursive view": (RECURSIVE_VIEW, "holds a view"),
    "trigger": (("CREATE TRIGGER t AFTER INSERT ON tracks BEGIN DELETE FROM tracks; END",),
                "holds a trigger"),
    "extra column": (("ALTER TABLE files ADD COLUMN evil TEXT",), "table 'files' has columns"),
    "foreign table": (("CREATE TABLE evil (x)",), "table 'evil' has columns"),
    "newer schema": (("PRAGMA user_version = 9999",), "schema version 9999"),
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a process of its own: a snapshot that makes it spin fails on the timeout
    instead of hanging the run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(musicark.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "musicark", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize("case", sorted(HOSTILE_SCHEMAS))
def test_a_snapshot_with_a_foreign_schema_is_refused_before_any_query(
        published: tuple[Path, Path], tmp_path: Path, case: str) -> None:
    statements, expected = HOSTILE_SCHEMAS[case]
    _, release = published
    copy, _ = _snapshot_release(release, tmp_path / "dl" / "r1", _edit_snapshot(*statements))
    result = _cli("mirror", "import", str(copy), "-a", str(tmp_path / "m"))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert _leftovers(tmp_path / "m") == []


def test_repair_catalog_from_goes_through_the_same_check(published: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    publisher, release = published
    archive = tmp_path / "a"
    shutil.copytree(publisher, archive, ignore=shutil.ignore_patterns("releases"))
    before = (archive / "catalog.sqlite").read_bytes()
    copy, _ = _snapshot_release(release, tmp_path / "dl" / "r1",
                                _edit_snapshot(*RECURSIVE_VIEW))
    result = _cli("repair", "--catalog-from", str(copy), "-a", str(archive))
    assert result.returncode == 2, result.stderr
    assert "holds a view" in result.stderr and "Traceback" not in result.stderr
    assert (archive / "catalog.sqlite").read_bytes() == before
    assert not list(archive.glob("catalog.sqlite.restore.tmp"))


def _bad_lines(good: dict) -> dict[str, str]:
    """files.jsonl lines a stranger may send → what the one line about each says."""
    def variant(**change) -> str:
        return json.dumps({**good, **change})

    return {"[" * 100_000: "nested too deeply",
            variant(path=["data", "x"]): "path is not a non-empty string",
            variant(restore="abc"): "restore is not a JSON object",
            variant(tracks="abc"): "tracks is not a list",
            variant(tracks=5): "tracks is not a list",
            variant(tracks=[{"track": "track:" + "9" * 400}]): "tracks[0].track is not track:N",
            variant(size="12"): "size is not an integer",
            variant(path="data/../../../etc/passwd"): "path is not normalized",
            '{"path": "data/x", "sha256": 1e999999}': "sha256 is not 64 lowercase hex"}


def _hostile_jsonl(shard: Path) -> dict[int, str]:
    """Append the bad lines to the shard's files.jsonl (bag made again): line → reason."""
    records = entries(shard)
    bad = _bad_lines(records[0])
    lines = [json.dumps(r) for r in records] + list(bad)
    (shard / "files.jsonl").write_text("\n".join(lines) + "\n")
    rebag(shard)
    return {len(records) + n: reason for n, reason in enumerate(bad.values(), 1)}


def test_hostile_files_jsonl_lines_are_bad_entries_in_mirror_import(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    shard = lone_shard(release, tmp_path / "dl")
    expected = _hostile_jsonl(shard)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [shard])
        assert report.shards[0].state == "damaged"
        assert mirror.conn.execute("SELECT count(*) FROM files").fetchone()[0] == 0
    problems = report.shards[0].problems
    for number, reason in expected.items():
        assert any(f"files.jsonl: invalid: line {number}: " in p and reason in p
                   for p in problems), (number, reason, problems)


def test_hostile_files_jsonl_lines_are_bad_entries_in_verify_bag(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    shard = lone_shard(release, tmp_path / "dl")
    expected = _hostile_jsonl(shard)
    result = CliRunner().invoke(app, ["verify", "--bag", str(shard), "--json"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)
    lines = [p["detail"] for p in json.loads(result.stdout)["problems"]]
    for number, reason in expected.items():
        assert any(p.startswith(f"line {number}: ") and reason in p for p in lines), \
            (number, reason, lines)


def test_hostile_torrents_json_entries_are_bad_entries(published: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    """In verify of a release directory and in mirror import: each entry one line."""
    from musicark.verify.releases import verify_release_dir

    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    hostile = [{"name": ["x"]}, {"name": "a/b", "release": "r1", "torrent": "t"},
               {"name": "n", "release": 5, "torrent": "t"}, "abc", 7,
               {"name": "n", "release": "r1", "torrent": "t", "data_size": "9" * 400}]
    _relist(copy, lambda torrents: torrents.extend(hostile))
    count = len(_listing(copy)["torrents"])
    report = verify_release_dir(copy)
    lines = [p.detail for p in report.problems if p.path.endswith("torrents.json")]
    for n in range(count - len(hostile) + 1, count + 1):
        assert any(line.startswith(f"torrent entry {n}: ") for line in lines), (n, lines)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        result = import_mirror(mirror, [copy])
    bad = result.releases["r1"]["problems"]
    assert len(bad) == len(hostile) and result.exit_code == 1, bad
    assert result.count("verified") == len(shards(copy))  # the rest imports


def test_a_deeply_nested_torrents_json_is_one_clear_line(published: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    from musicark.verify.releases import verify_release_dir

    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    (copy / "torrents.json").write_text('{"release": "r1", "torrents": ' + "[" * 100_000)
    lines = [p.line() for p in verify_release_dir(copy).problems
             if p.path.endswith("torrents.json")]
    assert lines == [f"{copy / 'torrents.json'}: invalid: not a torrent list: "
                     f"{copy / 'torrents.json'}: JSON nested too deeply"]
    result = CliRunner().invoke(app, ["mirror", "import", str(copy), "-a", str(tmp_path / "m")])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr, result.output
    assert "Traceback" not in result.output


def _listing_around(root: Path, skip: Path, release: Path) -> dict[str, tuple]:
    """Every entry under `root` but those under `skip`: what it is and its times, so a
    write or a new file shows, and outside `release` a read too (its access time)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            info = os.lstat(here / name)
            reads = info.st_atime_ns if not os.path.isdir(here / name) \
                and not (here / name).is_relative_to(release) else None
            out[str((here / name).relative_to(root))] = (
                info.st_mode, info.st_size, info.st_mtime_ns, info.st_nlink, reads)
    return out


def test_a_hostile_release_writes_and_reads_nothing_outside_the_archive_and_the_shards(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    """One release with every trick at once; the shards left as published still import."""
    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    outside = tmp_path / "outside"
    every = shards(copy)
    assert len(every) >= 6
    # 1. a sha256 naming a path, with only a sha512 manifest
    records = entries(every[0])
    records[0]["sha256"] = str(outside / "PWNED")
    write_entries(every[0], records)
    rebag(every[0], "sha512", "sha512")
    # 2. a payload file that is a symlink to a file outside, another that dangles, a FIFO
    victim = every[1] / entries(every[1])[0]["path"]
    shutil.move(victim, outside / "linked.bin") if outside.is_dir() else (
        outside.mkdir(), shutil.move(victim, outside / "linked.bin"))
    victim.symlink_to(outside / "linked.bin")
    (every[1] / "data" / "dangling").symlink_to(outside / "nothing-here")
    os.mkfifo(every[1] / "data" / "fifo")
    # 3. a shard folder that is a symlink to a folder of someone's music
    music = outside / "music"
    shutil.move(every[2], music)
    every[2].symlink_to(music, target_is_directory=True)
    # 4. hostile files.jsonl lines
    _hostile_jsonl(every[3])
    # 5. torrents.json: a shard's torrent and the metadata's name lead outside
    host_torrent = outside / "host.torrent"
    host_torrent.write_bytes(next((copy / "torrents").iterdir()).read_bytes())
    other = outside / "other" / "metadata" / "snap"
    (snap,) = copy.glob("metadata/*/catalog.sqlite.zst")
    other.mkdir(parents=True)
    shutil.copy(snap, other / "catalog.sqlite.zst")
    snap.unlink()

    def edit(torrents: list[dict]) -> None:
        next(t for t in torrents if t["name"] == every[4].name)["torrent"] = str(host_torrent)
        next(t for t in torrents if t["metadata"])["name"] = "../../../outside/other/metadata/snap"

    _relist(copy, edit)
    for path in outside.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (OLD, OLD))
    mirror_root = tmp_path / "m"
    before = _listing_around(tmp_path, mirror_root, copy)
    with Archive.create(mirror_root, name=NAME) as mirror:
        report = import_mirror(mirror, [copy])
        states = {s.name: s.state for s in report.shards}
        stored = [p for p in (mirror_root / "store" / "sha256").rglob("*") if p.is_file()]
        held = {r[0] for r in mirror.conn.execute("SELECT sha256 FROM files")}
    assert [states[s.name] for s in every[:5]] == ["damaged"] * 5, states
    assert all(states[s.name] == "verified" for s in every[5:]), states
    assert report.releases["r1"]["catalog"] == "minimal" and report.exit_code == 1
    after = _listing_around(tmp_path, mirror_root, copy)
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    # Only the verified shards' files changed: made read-only and hardlinked into the store.
    verified = [str(s.relative_to(tmp_path)) for s in every[5:]]
    assert all(k.startswith(tuple(verified)) for k in changed), sorted(changed)[:5]
    assert all(len(p.name) == 64 and p.name[:2] == p.parent.parent.name for p in stored)
    assert {p.name for p in stored} <= held and all(len(h) == 64 for h in held)


def test_verify_of_a_release_directory_never_opens_a_torrent_outside_it(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    from musicark.verify.releases import verify_release_dir

    _, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    outside = bait(tmp_path / "host.torrent", next((copy / "torrents").iterdir()).read_bytes())
    first = shards(copy)[0].name
    _relist(copy, lambda torrents: next(t for t in torrents if t["name"] == first).update(
        torrent=str(outside)))
    report = verify_release_dir(copy)
    assert any("is absolute" in p.detail for p in report.problems), \
        [p.line() for p in report.problems]
    assert untouched(outside) == []


def test_a_restore_patch_that_declares_a_huge_original_is_refused_unallocated(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    _, release = published
    shard = lone_shard(release, tmp_path / "dl", lambda es: any(e["restore"] for e in es))
    records = entries(shard)
    entry = next(e for e in records if e["restore"])
    patch = shard / entry["restore"]["patch"]
    patch.write_bytes(zstandard.ZstdCompressor().compress(bytes(128 << 20)))
    entry["restore"]["patch_sha256"] = hashlib.sha256(patch.read_bytes()).hexdigest()
    write_entries(shard, records)
    rebag(shard)
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        report = import_mirror(mirror, [shard], restore_originals=True)
    assert report.shards[0].state == "verified"  # its bytes are what it says they are
    assert report.shards[0].originals == 0
    assert "the patch declares 134,217,728 bytes, more than" in _problems(report)


def test_a_snapshot_that_links_elsewhere_is_never_read(published: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """Not by verify of the release directory, not by mirror import, not by repair."""
    from musicark.verify.releases import verify_release_dir

    publisher, release = published
    copy = fetched(release, tmp_path / "dl" / "r1")
    (snap,) = copy.glob("metadata/*/catalog.sqlite.zst")
    outside = tmp_path / "outside" / "catalog.sqlite.zst"
    outside.parent.mkdir()
    shutil.move(snap, outside)
    bait(outside)
    snap.symlink_to(outside)
    report = verify_release_dir(copy)
    assert any(p.path == str(snap) and "not a regular file" in p.detail
               for p in report.problems), [p.line() for p in report.problems]
    with Archive.create(tmp_path / "m", name=NAME) as mirror:
        imported = import_mirror(mirror, [copy])
    assert imported.releases["r1"]["catalog"] == "minimal"
    assert any("leads outside" in p for p in imported.releases["r1"]["problems"])
    archive = tmp_path / "a"
    shutil.copytree(publisher, archive, ignore=shutil.ignore_patterns("releases"))
    result = _cli("repair", "--catalog-from", str(copy), "-a", str(archive))
    assert result.returncode == 2 and "leads outside" in result.stderr, result.stderr
    assert untouched(outside) == []


@pytest.mark.skipif(not PASSWD.is_file(), reason="no /etc/passwd on this host")
def test_verify_store_reports_a_ledger_row_naming_a_path_without_reading_it(
        published: tuple[Path, Path], tmp_path: Path) -> None:
    """A row left by a hostile release before mirrors checked digests: damage, one line."""
    from musicark.verify import run_verify

    _, release = published
    shard = lone_shard(release, tmp_path / "dl")
    root = tmp_path / "m"
    with Archive.create(root, name=NAME) as mirror:
        assert import_mirror(mirror, [shard]).shards[0].state == "verified"
        mirror.conn.execute("UPDATE files SET sha256 = ?, size = ?, verified_at = NULL "
                            "WHERE rowid = (SELECT min(rowid) FROM files WHERE status = 'ok')",
                            (str(PASSWD), PASSWD.stat().st_size))
    report = run_verify(root, "store")
    bad = [p for p in report.problems if p.sha256 == str(PASSWD)]
    assert [(p.kind, p.path) for p in bad] == [("invalid", f"ledger row {str(PASSWD)!r}")]
    assert "no file is read" in bad[0].detail
