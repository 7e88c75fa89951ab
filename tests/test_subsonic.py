"""The Subsonic API through a real client (py-sonic's libsonic) against a real server on
127.0.0.1, in JSON, and the same calls in XML, which must say the same thing."""

from __future__ import annotations

import hashlib
import io
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import httpx
import libsonic
import pytest
from libsonic.errors import CredentialError, DataNotFoundError, ParameterError

from live_server import InProcess
from musicark.archive import Archive
from musicark.ingest.store import Store
from musicark.serve import create_app
from musicark.serve.art import cover_art
from musicark.serve.subsonic.throttle import LoginThrottle
from musicark.serve.subsonic.users import Users
from serve_fixture import WITH_ART, build

USER, PASSWORD = "alice", "pä55 word&="
NS = "{http://subsonic.org/restapi}"


def _link_art(path: Path) -> int:
    """Match the real file with embedded art to a catalog track that has none yet."""
    with Archive.open(path) as archive:
        sha = hashlib.sha256(WITH_ART.read_bytes()).hexdigest()
        file_rowid = archive.conn.execute("SELECT rowid FROM files WHERE sha256 = ?",
                                          (sha,)).fetchone()[0]
        track = archive.conn.execute(
            "SELECT rowid FROM tracks WHERE album_rowid IS NOT NULL AND rowid NOT IN "
            "(SELECT track_rowid FROM track_files) ORDER BY rowid LIMIT 1").fetchone()[0]
        archive.conn.execute("INSERT INTO track_files VALUES (?, ?, 'manual', 1.0)",
                             (track, file_rowid))
    return track


class Server(InProcess):
    def __init__(self, path: Path, **options) -> None:
        self.app = create_app(path, **options)
        super().__init__(self.app)


@pytest.fixture(scope="module")
def sonic(tmp_path_factory: pytest.TempPathFactory):
    path = build(tmp_path_factory.mktemp("subsonic"))
    art_track = _link_art(path)
    api_key = Users(path).add(USER, PASSWORD)
    server = Server(path, record_plays=True)
    conn = libsonic.Connection("http://127.0.0.1", USER, PASSWORD, port=server.port)
    yield {"conn": conn, "url": server.url, "path": path, "art_track": art_track,
           "api_key": api_key, "port": server.port, "app": server.app}
    server.stop()


def _songs(path: Path) -> dict[int, str]:
    """Catalog tracks with an ok file, and the sha256 of the file a client gets."""
    with Archive.open(path, readonly=True) as archive:
        rows = archive.conn.execute(
            "SELECT tf.track_rowid, f.sha256, f.codec, f.bitrate FROM track_files tf "
            "JOIN files f ON f.rowid = tf.file_rowid WHERE f.status = 'ok'").fetchall()
    best: dict[int, tuple] = {}
    for track, sha, codec, bitrate in rows:
        key = (codec in ("flac", "pcm_s16le"), bitrate or 0)
        if track not in best or key > best[track][0]:
            best[track] = (key, sha)
    return {t: sha for t, (_, sha) in best.items()}


def _get(sonic, method: str, fmt: str = "json", **params) -> httpx.Response:
    params = {"u": USER, "p": PASSWORD, "v": "1.16.1", "c": "test", "f": fmt, **params}
    return httpx.get(f"{sonic['url']}/rest/{method}", params=params, timeout=30)


def _xml_tree(element: ET.Element):
    node: dict = dict(element.attrib)
    if element.text and element.text.strip():
        node["value"] = element.text
    for child in element:
        node.setdefault(child.tag.removeprefix(NS), []).append(_xml_tree(child))
    if set(node) == {"value"}:
        return node["value"]
    return node


def _normal(node):
    """JSON made comparable with XML: scalars as strings, every child element a list."""
    if isinstance(node, dict):
        return {k: ([_normal(v)] if isinstance(v, dict) else _normal(v))
                for k, v in node.items() if v != []}
    if isinstance(node, list):
        return [_normal(v) for v in node]
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _same_in_xml(sonic, method: str, **params) -> dict:
    """The method's JSON body, after checking its XML says exactly the same."""
    as_json = _get(sonic, method, **params)
    as_xml = _get(sonic, method, "xml", **params)
    assert as_json.status_code == as_xml.status_code == 200
    assert as_xml.headers["content-type"].startswith("text/xml")
    body = as_json.json()["subsonic-response"]
    root = ET.fromstring(as_xml.content)
    assert root.tag == f"{NS}subsonic-response"
    assert _normal(body) == _xml_tree(root) | {}, method
    return body


def test_ping_license_extensions_and_auth_schemes(sonic) -> None:
    conn = sonic["conn"]
    assert conn.ping()
    assert conn.getLicense()["license"]["valid"] is True
    legacy = libsonic.Connection("http://127.0.0.1", USER, PASSWORD, port=sonic["port"],
                                 legacyAuth=True)  # p=enc:HEX
    assert legacy.ping()
    body = _same_in_xml(sonic, "getOpenSubsonicExtensions")
    assert body["openSubsonic"] is True
    assert {"name": "apiKeyAuthentication", "versions": [1]} in body["openSubsonicExtensions"]
    keyed = httpx.get(f"{sonic['url']}/rest/ping.view", params={
        "apiKey": sonic["api_key"], "f": "json", "v": "1.16.1", "c": "t"}).json()
    assert keyed["subsonic-response"]["status"] == "ok"
    public = httpx.get(f"{sonic['url']}/rest/getOpenSubsonicExtensions", params={"f": "json"})
    assert public.json()["subsonic-response"]["status"] == "ok"  # no credentials needed
    bad_key = httpx.get(f"{sonic['url']}/rest/ping", params={"apiKey": "x", "f": "json"})
    assert bad_key.json()["subsonic-response"]["error"]["code"] == 44
    both = httpx.get(f"{sonic['url']}/rest/ping", params={
        "apiKey": sonic["api_key"], "u": USER, "f": "json"})
    assert both.json()["subsonic-response"]["error"]["code"] == 43


def test_wrong_password_is_code_40_with_http_200(sonic) -> None:
    wrong = libsonic.Connection("http://127.0.0.1", USER, "nope", port=sonic["port"])
    with pytest.raises(CredentialError):
        wrong.ping()
    stranger = libsonic.Connection("http://127.0.0.1", "mallory", PASSWORD, port=sonic["port"])
    with pytest.raises(CredentialError):
        stranger.getArtists()
    for params in ({"u": USER, "p": "nope"}, {"u": USER, "t": "0" * 32, "s": "salt"},
                   {"u": USER, "p": "enc:zz"}):
        response = httpx.get(f"{sonic['url']}/rest/getSong", params={
            **params, "id": "tr-1", "f": "xml"})
        assert response.status_code == 200
        error = ET.fromstring(response.content).find(f"{NS}error")
        assert error is not None and error.get("code") == "40"
    missing = httpx.get(f"{sonic['url']}/rest/ping", params={"f": "json"}).json()
    assert missing["subsonic-response"]["error"]["code"] == 10
    # Four failures for alice: her logins now wait (test_serve_logins.py); the next tests
    # log in as her, so the throttle is started afresh.
    throttled = httpx.get(f"{sonic['url']}/rest/ping", params={
        "u": USER, "p": PASSWORD, "f": "json"}).json()["subsonic-response"]
    assert "too many failed logins" in throttled["error"]["message"]
    sonic["app"].state.subsonic.logins.throttle = LoginThrottle()
    assert sonic["conn"].ping()


def test_songs_are_the_tracks_with_files_and_carry_every_field(sonic) -> None:
    conn, songs = sonic["conn"], _songs(sonic["path"])
    assert len(songs) == 8  # 6 rendered + hostile tags + the art file
    years = 0
    for track in songs:
        song = conn.getSong(f"tr-{track}")["song"]
        years += "year" in song  # the hostile album has no release date
        for field in ("title", "album", "artist", "track", "discNumber", "size",
                      "contentType", "suffix", "duration", "bitRate", "path", "albumId",
                      "artistId", "coverArt", "isrc"):
            assert field in song, (track, field)
        _same_in_xml(sonic, "getSong", id=f"tr-{track}")
    assert years >= 6
    with pytest.raises(DataNotFoundError):
        conn.getSong("tr-999999999")
    with pytest.raises(DataNotFoundError):
        conn.getSong("../../etc/passwd")
    with Archive.open(sonic["path"], readonly=True) as archive:
        without = archive.conn.execute(
            "SELECT rowid FROM tracks WHERE rowid NOT IN (SELECT track_rowid FROM "
            "track_files) LIMIT 1").fetchone()[0]
    with pytest.raises(DataNotFoundError):
        conn.getSong(f"tr-{without}")
    with pytest.raises(ParameterError):
        conn.getSong("")


def test_browsing_artists_albums_directories(sonic) -> None:
    conn, songs = sonic["conn"], _songs(sonic["path"])
    assert conn.getMusicFolders()["musicFolders"]["musicFolder"][0]["id"] == 1
    _same_in_xml(sonic, "getMusicFolders")
    artists = _same_in_xml(sonic, "getArtists")["artists"]
    indexes = _same_in_xml(sonic, "getIndexes")["indexes"]
    artist_ids = [a["id"] for i in artists["index"] for a in i["artist"]]
    assert artist_ids == [a["id"] for i in indexes["index"] for a in i["artist"]]
    assert conn.getArtists()["artists"]["index"] == artists["index"]
    seen_songs = set()
    for artist_id in artist_ids:
        artist = conn.getArtist(artist_id)["artist"]
        _same_in_xml(sonic, "getArtist", id=artist_id)
        directory = conn.getMusicDirectory(artist_id)["directory"]
        assert {c["id"] for c in directory["child"]} == {a["id"] for a in artist["album"]}
        for album_ref in artist["album"]:
            album = conn.getAlbum(album_ref["id"])["album"]
            _same_in_xml(sonic, "getAlbum", id=album_ref["id"])
            assert album["songCount"] == len(album["song"]) >= 1
            assert [s["id"] for s in conn.getMusicDirectory(album_ref["id"])["directory"][
                "child"]] == [s["id"] for s in album["song"]]
            seen_songs |= {int(s["id"][3:]) for s in album["song"]}
    assert seen_songs == set(songs)  # every song is reachable by browsing
    with pytest.raises(DataNotFoundError):
        conn.getAlbum("al-0")


@pytest.mark.parametrize("kind", ["random", "newest", "alphabeticalByName",
                                  "alphabeticalByArtist", "frequent", "recent", "highest",
                                  "starred"])
def test_album_lists(sonic, kind: str) -> None:
    conn = sonic["conn"]
    albums = conn.getAlbumList2(kind, size=500)["albumList2"].get("album", [])
    total = len(conn.getAlbumList2("alphabeticalByName", size=500)["albumList2"]["album"])
    if kind not in ("recent", "starred"):
        assert len(albums) == total >= 5
    if kind == "alphabeticalByName":
        names = [a["name"].casefold() for a in albums]
        assert names == sorted(names)
        assert conn.getAlbumList2(kind, size=2, offset=1)["albumList2"]["album"] == albums[1:3]
    if kind != "random":
        _same_in_xml(sonic, "getAlbumList2", type=kind, size=500)


def test_album_lists_by_year_and_genre_songs_genres_random(sonic) -> None:
    conn = sonic["conn"]
    every = conn.getAlbumList2("alphabeticalByName", size=500)["albumList2"]["album"]
    years = sorted(a["year"] for a in every if "year" in a)
    low, high = years[0], years[len(years) // 2]
    by_year = conn.getAlbumList2("byYear", size=500, fromYear=low, toYear=high)["albumList2"]
    assert by_year["album"] and all(low <= a["year"] <= high for a in by_year["album"])
    assert [a["year"] for a in by_year["album"]] == sorted(a["year"] for a in by_year["album"])
    down = conn.getAlbumList2("byYear", size=500, fromYear=high, toYear=low)["albumList2"]
    assert [a["year"] for a in down["album"]] == sorted(
        (a["year"] for a in by_year["album"]), reverse=True)
    genres = _same_in_xml(sonic, "getGenres")["genres"]["genre"]
    assert genres and sum(g["songCount"] for g in genres) <= len(_songs(sonic["path"]))
    genre = genres[0]["value"]
    in_genre = conn.getSongsByGenre(genre, count=500)["songsByGenre"]["song"]
    assert len(in_genre) == genres[0]["songCount"] and all(s["genre"] == genre
                                                            for s in in_genre)
    by_genre = conn.getAlbumList2("byGenre", size=500, genre=genre)["albumList2"]["album"]
    assert len(by_genre) == genres[0]["albumCount"]
    random_songs = conn.getRandomSongs(size=5)["randomSongs"]["song"]
    assert len(random_songs) == 5 == len({s["id"] for s in random_songs})
    assert set(int(s["id"][3:]) for s in random_songs) <= set(_songs(sonic["path"]))
    in_years = conn.getRandomSongs(size=50, fromYear=low, toYear=high)["randomSongs"]["song"]
    assert in_years and all(low <= s["year"] <= high for s in in_years)
    with pytest.raises(ParameterError):
        conn.getAlbumList2("byGenre")


def test_search3_finds_songs_albums_artists_and_empty_query_pages_everything(sonic) -> None:
    conn, songs = sonic["conn"], _songs(sonic["path"])
    song = conn.getSong(f"tr-{min(songs)}")["song"]
    found = conn.search3(song["title"])["searchResult3"]
    assert song["id"] in [s["id"] for s in found["song"]]
    assert all(int(s["id"][3:]) in songs for s in found["song"])  # only playable tracks
    by_album = conn.search3(song["album"], songCount=0)["searchResult3"]
    assert song["albumId"] in [a["id"] for a in by_album["album"]]
    by_artist = conn.search3(song["artist"].split(",")[0], songCount=0)["searchResult3"]
    assert song["artistId"] in [a["id"] for a in by_artist["artist"]]
    _same_in_xml(sonic, "search3", query=song["title"])
    _same_in_xml(sonic, "search2", query=song["title"])
    assert song["id"] in [s["id"] for s in conn.search2(song["title"])["searchResult2"]["song"]]
    synced, offset = [], 0
    while True:  # how clients sync: empty query, pages of songs until one comes back short
        page = conn.search3("", artistCount=0, albumCount=0, songCount=3,
                            songOffset=offset)["searchResult3"].get("song", [])
        synced += [s["id"] for s in page]
        offset += 3
        if len(page) < 3:
            break
    assert sorted(synced) == sorted(f"tr-{t}" for t in songs) and len(set(synced)) == len(synced)
    albums = conn.search3('""', artistCount=500, albumCount=500, songCount=0)["searchResult3"]
    listed = conn.getAlbumList2("alphabeticalByName", size=500)["albumList2"]["album"]
    assert {a["id"] for a in albums["album"]} == {a["id"] for a in listed}
    for hostile in ('"', "*", "NEAR(a b)", "a:b", ")(", "\x00", "x" * 600):
        response = _get(sonic, "search3", query=hostile)
        assert response.status_code == 200 and "subsonic-response" in response.json()


def test_stream_original_bytes_with_range_and_download(sonic) -> None:
    conn, songs = sonic["conn"], _songs(sonic["path"])
    track, sha = min(songs.items())
    original = Store(sonic["path"] / "store").path_for(sha).read_bytes()
    assert conn.stream(f"tr-{track}").read() == original
    assert conn.stream(f"tr-{track}", tformat="raw", maxBitRate=64).read() == original
    ranged = httpx.get(
        f"{sonic['url']}/rest/stream", params={"u": USER, "p": PASSWORD, "id": f"tr-{track}"},
        headers={"Range": "bytes=100-1099"})
    assert ranged.status_code == 206 and ranged.content == original[100:1100]
    assert ranged.headers["content-range"] == f"bytes 100-1099/{len(original)}"
    downloaded = conn.download(f"tr-{track}")
    assert downloaded.read() == original
    assert "attachment" in downloaded.headers["content-disposition"]
    with pytest.raises(DataNotFoundError):
        conn.stream("tr-999999999")


def _decoded_seconds(data: bytes, *, padded: bool = False) -> tuple[str, float]:
    """Codec and decoded length. `padded`: the zero padding after the last frame (to meet
    an estimated Content-Length) is skipped as players skip it; nothing before it may fail."""
    samples, rejected = 0, 0
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            try:
                samples += sum(frame.samples for frame in packet.decode())
            except av.error.InvalidDataError:
                assert padded and not bytes(packet).strip(b"\x00")[4:], "damaged audio"
                rejected += 1
        return stream.codec_context.name, samples / stream.rate


@pytest.mark.parametrize("fmt,codec", [("opus", "opus"), ("mp3", "mp3float")])
def test_transcoded_stream_decodes_with_the_expected_duration(sonic, fmt, codec) -> None:
    conn, songs = sonic["conn"], _songs(sonic["path"])
    track = sonic["art_track"]
    with av.open(str(Store(sonic["path"] / "store").path_for(songs[track]))) as source:
        expected = source.duration / 1_000_000
    response = conn.stream(f"tr-{track}", maxBitRate=96, tformat=fmt)
    data = response.read()
    assert response.headers["content-type"] == ("audio/ogg" if fmt == "opus" else "audio/mpeg")
    name, seconds = _decoded_seconds(data)
    assert name == codec and abs(seconds - expected) < 0.1, (seconds, expected)
    assert 0.7 < len(data) * 8 / seconds / 96_000 < 1.3  # about the bit rate asked for
    sized = httpx.get(f"{sonic['url']}/rest/stream", params={
        "u": USER, "p": PASSWORD, "id": f"tr-{track}", "format": fmt, "maxBitRate": 64,
        "estimateContentLength": "true"}, timeout=60)
    assert int(sized.headers["content-length"]) == len(sized.content)
    assert abs(_decoded_seconds(sized.content, padded=True)[1] - expected) < 0.1


def test_max_bitrate_alone_transcodes_lossless_to_mp3(sonic) -> None:
    songs = _songs(sonic["path"])
    conn = sonic["conn"]
    flac = next(t for t in songs if conn.getSong(f"tr-{t}")["song"]["suffix"] == "flac")
    response = conn.stream(f"tr-{flac}", maxBitRate=128)
    assert response.headers["content-type"] == "audio/mpeg"
    assert _decoded_seconds(response.read())[0] == "mp3float"


def test_cover_art_embedded_sniffed_and_resized(sonic) -> None:
    from PIL import Image

    conn, track = sonic["conn"], sonic["art_track"]
    data, mime = cover_art(WITH_ART)
    song = conn.getSong(f"tr-{track}")["song"]
    art = conn.getCoverArt(song["coverArt"])
    assert art.read() == data and art.headers["content-type"] == mime
    assert conn.getCoverArt(song["albumId"]).read() == data  # the album's art is its songs'
    small = conn.getCoverArt(song["coverArt"], size=64)
    image = Image.open(io.BytesIO(small.read()))
    assert max(image.size) == 64 and small.headers["x-content-type-options"] == "nosniff"
    other = min(t for t in _songs(sonic["path"]) if t != track)
    for bad in (f"tr-{other}", "x", "tr-", "al-abc", "../x"):
        with pytest.raises(DataNotFoundError):
            conn.getCoverArt(bad)


def test_scrobble_goes_to_the_plays_log_never_the_catalog(sonic) -> None:
    conn, path = sonic["conn"], sonic["path"]
    catalog = (path / "catalog.sqlite").read_bytes()
    track = sonic["art_track"]
    song = conn.getSong(f"tr-{track}")["song"]
    assert conn.scrobble(f"tr-{track}")["status"] == "ok"
    log = (path / "plays.jsonl").read_text().splitlines()
    assert f'"track_rowid": {track}' in log[-1] and f'"user": "{USER}"' in log[-1]
    assert (path / "plays.jsonl").stat().st_mode & 0o077 == 0
    recent = conn.getAlbumList2("recent")["albumList2"]["album"]
    assert recent[0]["id"] == song["albumId"]
    assert (path / "catalog.sqlite").read_bytes() == catalog
    assert conn.getStarred2()["starred2"] == {} and conn.getPlaylists()["playlists"] == {}
    _same_in_xml(sonic, "getStarred2")
    _same_in_xml(sonic, "getPlaylists")


def test_post_form_view_suffix_and_errors_stay_http_200(sonic) -> None:
    url = sonic["url"]
    posted = httpx.post(f"{url}/rest/getSong.view", data={
        "u": USER, "p": PASSWORD, "f": "json", "id": f"tr-{sonic['art_track']}"})
    assert posted.json()["subsonic-response"]["song"]["id"] == f"tr-{sonic['art_track']}"
    for method, params, code in [("getSong", {}, 10), ("getAlbum", {"id": "al-x"}, 70),
                                 ("noSuchMethod", {}, 0), ("getAlbumList2", {}, 10),
                                 ("getAlbumList2", {"type": "nonsense"}, 0),
                                 ("getUser", {"username": "root"}, 50)]:
        response = _get(sonic, method, **params)
        assert response.status_code == 200
        assert response.json()["subsonic-response"]["error"]["code"] == code, method


def test_the_library_snapshot_follows_catalog_changes(sonic, monkeypatch) -> None:
    from musicark.serve.subsonic import library

    monkeypatch.setattr(library, "CHECK_EVERY", 0.0)
    monkeypatch.setattr(library, "REBUILD_EVERY", 0.0)
    lib = library.Library(sonic["path"] / "catalog.sqlite")
    before = lib.get()
    with Archive.open(sonic["path"]) as archive:
        track = archive.conn.execute(
            "SELECT rowid FROM tracks WHERE album_rowid IS NOT NULL AND rowid NOT IN "
            "(SELECT track_rowid FROM track_files) ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        file_rowid = archive.conn.execute(
            "SELECT rowid FROM files WHERE status = 'ok' LIMIT 1").fetchone()[0]
        archive.conn.execute("INSERT INTO track_files VALUES (?, ?, 'manual', 1.0)",
                             (track, file_rowid))
        try:
            assert lib.get() is before  # the old snapshot serves while a new one builds
            for _ in range(500):
                if lib.get() is not before:
                    break
                time.sleep(0.01)
            after = lib.get()
            assert after.is_song(track) and not before.is_song(track)
            assert len(after.songs) == len(before.songs) + 1
        finally:
            archive.conn.execute("DELETE FROM track_files WHERE track_rowid = ?", (track,))


def test_song_filters_look_files_up_by_rowid_never_scan_by_status(sonic) -> None:
    """Regression: with `files_status` the planner scanned every ok file per search match."""
    from musicark.serve.subsonic.entries import FILE_SQL
    from musicark.serve.subsonic.search import SONG_MATCH_SQL

    with Archive.open(sonic["path"], readonly=True) as archive:
        for sql, params in ((SONG_MATCH_SQL, ('"a"*', 10)), (FILE_SQL.format(marks="?"), (1,))):
            plan = " ".join(str(r) for r in archive.conn.execute(
                f"EXPLAIN QUERY PLAN {sql}", params))
            assert "files_status" not in plan and "USING INTEGER PRIMARY KEY" in plan, plan


def test_preservation_looks_files_up_by_rowid(sonic) -> None:
    """Regression (found by the Subsonic benchmark): the web API's preservation query went
    through the files' status index, scanning every ok file: 2.5 s a search at 1 M files."""
    from musicark.serve.queries import preservation

    with Archive.open(sonic["path"], readonly=True) as archive:
        statements: list[str] = []
        archive.conn.set_trace_callback(statements.append)
        preservation(archive, [*_songs(sonic["path"]), *range(1, 20)])  # a page of rows
        archive.conn.set_trace_callback(None)
        for sql in statements:
            if "track_files" in sql:
                plan = " ".join(str(r) for r in archive.conn.execute(
                    f"EXPLAIN QUERY PLAN {sql}"))
                assert "files_status" not in plan, (sql, plan)


def test_frequent_albums_follow_observed_listens(sonic, monkeypatch) -> None:
    """Listening data imported into the catalog (issue #14) counts in "frequent"."""
    import sqlite3

    from musicark.serve.subsonic import library

    monkeypatch.setattr(library, "CHECK_EVERY", 0.0)  # the server runs in this process
    monkeypatch.setattr(library, "REBUILD_EVERY", 0.0)
    conn = sonic["conn"]
    before = [a["id"] for a in conn.getAlbumList2("frequent", size=500)["albumList2"]["album"]]
    last = int(before[-1].removeprefix("al-"))
    db = sqlite3.connect(sonic["path"] / "catalog.sqlite")
    try:
        track = db.execute("SELECT tf.track_rowid FROM track_files tf JOIN tracks t ON "
                           "t.rowid = tf.track_rowid WHERE t.album_rowid = ? LIMIT 1",
                           (last,)).fetchone()[0]
        with db:
            source = db.execute("INSERT INTO listen_sources(name, format, created_at) "
                                "VALUES ('radio', 'table', '2026-11-29')").lastrowid
            key = db.execute("INSERT INTO listen_keys(khash, title, track_rowid) "
                             "VALUES (424242, 'x', ?)", (track,)).lastrowid
            db.execute("INSERT INTO listen_counts VALUES (?, ?, 202611, 10000000000)",
                       (key, source))
    finally:
        db.close()
    deadline = time.monotonic() + 30
    while True:  # the snapshot is rebuilt when another connection commits
        after = [a["id"] for a in conn.getAlbumList2("frequent", size=500)["albumList2"]["album"]]
        if after[0] == before[-1] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after[0] == f"al-{last}"


def test_repeated_searches_come_from_memory_until_the_catalog_changes(sonic) -> None:
    """search3 answers are kept per (method, parameters) without the credentials (token
    clients salt every request), dropped at once when the catalog changes; every request
    is still authenticated."""
    rowid = min(_songs(sonic["path"]))
    with Archive.open(sonic["path"], readonly=True) as archive:
        name = archive.conn.execute("SELECT name FROM tracks WHERE rowid = ?",
                                    (rowid,)).fetchone()[0]
    word = max(name.split(), key=len)

    def search(salt: str, password: str = PASSWORD) -> httpx.Response:
        token = hashlib.md5((password + salt).encode()).hexdigest()
        return httpx.get(f"{sonic['url']}/rest/search3", timeout=30, params={
            "u": USER, "t": token, "s": salt, "v": "1.16.1", "c": salt, "f": "json",
            "query": word, "songCount": 50, "albumCount": 0, "artistCount": 0})

    def titles(response: httpx.Response) -> dict[str, str]:
        return {s["id"]: s["title"] for s in
                response.json()["subsonic-response"]["searchResult3"]["song"]}

    recent = sonic["app"].state.subsonic.recent
    first = search("salt1")
    hits = recent.hits
    second = search("salt2")
    assert recent.hits == hits + 1 and second.content == first.content
    assert titles(first)[f"tr-{rowid}"] == name
    refused = search("salt3", "wrong")
    assert refused.json()["subsonic-response"]["error"]["code"] == 40
    with Archive.open(sonic["path"]) as archive:
        archive.conn.execute("UPDATE tracks SET name = ? WHERE rowid = ?",
                             (f"{name} renamed", rowid))
    try:
        assert titles(search("salt4"))[f"tr-{rowid}"] == f"{name} renamed"
    finally:
        with Archive.open(sonic["path"]) as archive:
            archive.conn.execute("UPDATE tracks SET name = ? WHERE rowid = ?", (name, rowid))
    random_lists = [_get(sonic, "getAlbumList2", type="random", size=5) for _ in range(2)]
    hits = recent.hits
    _get(sonic, "getAlbumList2", type="random", size=5)
    assert recent.hits == hits and all(r.status_code == 200 for r in random_lists)
