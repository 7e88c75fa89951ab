"""The JSON API and pages through FastAPI's test client: results, paging, Range streaming,
and hostile input (paths, NUL bytes, huge ids, FTS syntax, HTML in catalog data)."""

from __future__ import annotations

import re
from pathlib import Path

import libtorrent as lt
import pytest
from fastapi.testclient import TestClient

from musicark.archive import Archive
from musicark.ingest.store import Store
from musicark.serve import create_app
from serve_fixture import HOSTILE_ARTIST, HOSTILE_NAME, HOSTILE_PROVENANCE, build


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Path]:
    path = build(tmp_path_factory.mktemp("web"))
    return TestClient(create_app(path), raise_server_exceptions=False), path


def _preserved_track(path: Path) -> tuple[int, str]:
    with Archive.open(path, readonly=True) as archive:
        return archive.conn.execute(
            "SELECT t.rowid, t.name FROM track_files tf JOIN tracks t ON t.rowid = "
            "tf.track_rowid ORDER BY t.rowid LIMIT 1").fetchone()


def test_search_shows_preservation_and_pages_by_cursor(web) -> None:
    client, path = web
    rowid, name = _preserved_track(path)
    word = max(re.findall(r"\w+", name), key=len)
    found = client.get("/api/v1/search", params={"q": word, "limit": 100}).json()
    hit = next(r for r in found["results"] if r["rowid"] == rowid)
    assert hit["preserved"]["files"] >= 1 and hit["audio_url"].startswith("/audio/")
    first = client.get("/api/v1/search", params={"q": "a", "limit": 7}).json()
    assert first["next_cursor"]
    second = client.get("/api/v1/search", params={"q": "a", "limit": 7,
                                                  "after": first["next_cursor"]}).json()
    both = client.get("/api/v1/search", params={"q": "a", "limit": 14}).json()
    ids = [r["rowid"] for r in first["results"] + second["results"]]
    assert ids == [r["rowid"] for r in both["results"]] and len(set(ids)) == 14
    html = client.get("/search", params={"q": name}).text
    assert f"/track/{rowid}" in html and 'class="kept"' in html


@pytest.mark.parametrize("q", ['"', "AND OR NOT", "NEAR(a b", "*", "^x", "a:b", "(", "%",
                               "../../etc/passwd", "' OR 1=1 --", "💥", "a" * 500])
def test_hostile_search_text_never_breaks_the_query(web, q: str) -> None:
    client, _ = web
    response = client.get("/api/v1/search", params={"q": q})
    assert response.status_code == 200 and isinstance(response.json()["results"], list)
    assert client.get("/search", params={"q": q}).status_code == 200


@pytest.mark.parametrize("url,status", [
    ("/api/v1/search?q=" + "a" * 501, 422), ("/api/v1/search?q=a&limit=0", 422),
    ("/api/v1/search?q=a&limit=101", 422), ("/api/v1/search?q=a&after=x.y", 400),
    ("/api/v1/search?q=a%00b", 200), ("/api/v1/tracks/0", 422),
    ("/api/v1/tracks/99999999999999999999999999", 422), ("/api/v1/tracks/-1", 422),
    ("/api/v1/tracks/1e3", 422), ("/api/v1/tracks/123456789", 404),
    ("/api/v1/files/" + "0" * 64, 404), ("/api/v1/files/..%2F..%2Fetc%2Fpasswd", 404),
    ("/audio/..%2F..%2Fetc%2Fpasswd", 404), ("/audio/%2e%2e%2e%2e" + "0" * 58, 422),
    ("/audio/" + "A" * 64, 422), ("/static/../catalog.sqlite", 404),
    ("/static/%2e%2e/%2e%2e/catalog.sqlite", 404), ("/charts/..%2Fx.png", 404),
    ("/releases/r1/..%2F..%2Fcatalog.sqlite.torrent", 404),
    ("/releases/..%2F..%2Fetc/passwd.torrent", 404), ("/api/v1/random?n=101", 422),
    ("/api/v1/random?seed=-1", 422), ("/api/v1/lookup", 422), ("/track/abc", 422),
    ("/nowhere", 404), ("/api/v1/nowhere", 404),
])
def test_malformed_requests_get_4xx_json_never_a_trace(web, url: str, status: int) -> None:
    client, _ = web
    response = client.get(url)
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text and "File \"" not in response.text
    if url.startswith("/api/") and status >= 400:
        body = response.json()
        assert body["status"] == status and body["error"]


def test_html_from_catalogs_and_tags_is_escaped(web) -> None:
    client, path = web
    with Archive.open(path, readonly=True) as archive:
        hostile = archive.conn.execute("SELECT rowid FROM tracks WHERE ext_id = 'hostile1'"
                                       ).fetchone()[0]
    for url in (f"/track/{hostile}", "/search?q=Hostile", f"/artist/{_artist_of(path, hostile)}"):
        html = client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html or "&lt;img" in html or "&#34;&gt;&lt;img" in html
    assert client.get("/api/v1/search", params={"q": "Hostile"}).json()["results"][0][
        "name"] == HOSTILE_NAME
    rowid, _ = _preserved_track(path)
    page = client.get(f"/track/{rowid}").text
    assert HOSTILE_PROVENANCE not in page and "&lt;b&gt;rips&lt;/b&gt; &amp; co" in page
    assert HOSTILE_ARTIST not in client.get("/search?q=Hostile").text


def _artist_of(path: Path, track: int) -> int:
    with Archive.open(path, readonly=True) as archive:
        return archive.conn.execute("SELECT artist_rowid FROM track_artists WHERE "
                                    "track_rowid = ?", (track,)).fetchone()[0]


def test_audio_streams_with_range_requests(web) -> None:
    client, path = web
    rowid, _ = _preserved_track(path)
    info = client.get(f"/api/v1/tracks/{rowid}").json()
    assert info["files"] and info["audio_url"]
    sha = info["audio_url"].rsplit("/", 1)[1]
    stored = Store(path / "store").path_for(sha).read_bytes()
    part = client.get(info["audio_url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == stored[100:200]
    assert part.headers["content-type"].startswith("audio/")
    whole = client.get(f"/api/v1/files/{sha}/audio")
    assert whole.status_code == 200 and whole.content == stored
    beyond = client.get(info["audio_url"], headers={"Range": f"bytes={len(stored) + 10}-"})
    assert beyond.status_code == 416


def test_lookup_batches_random_stats_and_releases(web) -> None:
    client, path = web
    ok = client.get("/api/v1/lookup", params={"id": ["ZZHOS2600001", "nothing-here"]}).json()
    assert ok["results"]["ZZHOS2600001"]["tracks"][0]["name"] == HOSTILE_NAME
    batch = client.post("/api/v1/lookup", json={"ids": [f"X{i}" for i in range(1000)]})
    assert batch.status_code == 200 and len(batch.json()["results"]) == 1000
    assert client.post("/api/v1/lookup", json={"ids": ["X"] * 1001}).status_code == 422
    assert client.post("/api/v1/lookup", content=b"{not json").status_code == 422
    drawn = client.get("/api/v1/random", params={"n": 6}).json()["results"]
    assert len(drawn) == 6 and all(r["audio_url"] for r in drawn)
    stats = client.get("/stats").text
    charts = re.findall(r'src="(/charts/[a-z0-9_-]+\.png)"', stats)
    assert len(charts) >= 3
    assert client.get(charts[0]).content.startswith(b"\x89PNG")
    torrents = client.get("/api/v1/releases").json()["torrents"]
    assert torrents and torrents[0]["magnet"].startswith("magnet:?xt=urn:btih:")
    data = client.get(torrents[0]["torrent_url"]).content
    assert str(lt.torrent_info(data).info_hashes().v1) == torrents[0]["btih"]
    assert "magnet:?xt=urn:btih:" in client.get("/releases").text


def test_read_only_no_write_endpoints(web) -> None:
    client, _ = web
    from musicark.serve import api, pages

    # The app's own route list holds the included routers as opaque entries (FastAPI
    # 0.165): the routers themselves list their routes.
    routes = [*client.app.routes, *api.router.routes, *pages.router.routes]
    assert sum(hasattr(r, "methods") for r in routes) >= 25
    for route in routes:
        methods = getattr(route, "methods", None) or set()
        writes = methods - {"GET", "HEAD"}
        assert not writes or route.path == "/api/v1/lookup" and writes == {"POST"}, route.path
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.request(method, "/api/v1/tracks/1")
        assert response.status_code == 405
    archive = client.app.state.archives.get()
    with pytest.raises(Exception, match="readonly|read-only"):
        archive.conn.execute("INSERT INTO events(at, kind) VALUES ('x', 'y')")


def test_search_offers_matching_artists_and_albums(web) -> None:
    client, path = web
    with Archive.open(path, readonly=True) as archive:
        artist_id, artist = archive.conn.execute(
            "SELECT a.rowid, a.name FROM track_files tf JOIN track_artists ta "
            "ON ta.track_rowid = tf.track_rowid JOIN artists a ON a.rowid = ta.artist_rowid "
            "ORDER BY a.rowid LIMIT 1").fetchone()
    found = client.get("/api/v1/search", params={"q": artist, "limit": 50}).json()
    assert {"rowid": artist_id, "name": artist} in found["artists"]
    assert f'href="/artist/{artist_id}"' in client.get("/search", params={"q": artist}).text


def test_cover_art_comes_from_the_file(web, testdata: Path) -> None:
    from musicark.ingest.store import sha256_file
    from musicark.serve.art import cover_art
    from serve_fixture import WITH_ART

    client, _ = web
    art = client.get(f"/art/{sha256_file(WITH_ART)[0]}")
    assert art.status_code == 200 and art.headers["content-type"] == "image/jpeg"
    assert art.content.startswith(b"\xff\xd8")
    mutagen_files = testdata / "audio" / "mutagen"
    for name in ("silence-44-s.flac", "has-tags.m4a", "silence-2s-PCM-44100-16-ID3v23.wav"):
        data, mime = cover_art(mutagen_files / name)
        assert mime == "image/png" and data.startswith(b"\x89PNG"), name
    assert (mutagen_files / "apev2-lyricsv2.mp3").is_file()
    assert cover_art(mutagen_files / "apev2-lyricsv2.mp3") is None  # tags, but no picture
    assert client.get(f"/art/{'f' * 64}").status_code == 404


def test_pages_load_nothing_from_other_hosts(web) -> None:
    client, path = web
    rowid, _ = _preserved_track(path)
    reference = client.get("/api").text
    assert "GET /api/v1/search" in reference and "POST /api/v1/lookup" in reference
    for url in ("/", "/search?q=a", f"/track/{rowid}", "/stats", "/radio", "/releases",
                "/api"):
        html = client.get(url).text
        assert not re.search(r'(src|href)="(https?:)?//', html), url


def test_markup_in_a_files_own_tags_is_escaped(web) -> None:
    from serve_fixture import HOSTILE_TAG_ARTIST, HOSTILE_TAG_TITLE

    client, path = web
    with Archive.open(path, readonly=True) as archive:
        track = archive.conn.execute(
            "SELECT tf.track_rowid FROM files f JOIN track_files tf ON tf.file_rowid = f.rowid "
            "WHERE f.common LIKE '%alert(%'").fetchone()[0]
    files = client.get(f"/api/v1/tracks/{track}").json()["files"]
    assert files[0]["tags"]["title"] == HOSTILE_TAG_TITLE
    html = client.get(f"/track/{track}").text
    assert HOSTILE_TAG_TITLE not in html and HOSTILE_TAG_ARTIST not in html
    assert "&lt;script&gt;alert(&#39;tag&#39;)&lt;/script&gt;" in html
