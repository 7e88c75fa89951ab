"""Security of the web app: headers on every response, redirects that never reflect the Host
header, HEAD wherever GET works, a favicon, and files whose bytes no longer match the ledger
never served as if they were fine."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from mutagen.flac import FLAC, Picture

from musicark.archive import Archive
from musicark.ingest.pipeline import ingest
from musicark.ingest.store import Store, sha256_file
from musicark.serve import api, create_app, pages
from serve_fixture import WITH_ART, build

HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options",
           "referrer-policy")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Path]:
    path = build(tmp_path_factory.mktemp("web"))
    return TestClient(create_app(path), raise_server_exceptions=False), path


def _facts(path: Path) -> dict[str, object]:
    """Concrete ids for every route parameter the fixture archive can fill."""
    with Archive.open(path, readonly=True) as archive:
        track, album, artist, sha = archive.conn.execute(
            "SELECT t.rowid, t.album_rowid, ta.artist_rowid, f.sha256 FROM track_files tf "
            "JOIN tracks t ON t.rowid = tf.track_rowid JOIN files f ON f.rowid = tf.file_rowid "
            "JOIN track_artists ta ON ta.track_rowid = t.rowid WHERE f.status = 'ok' "
            "AND f.codec = 'opus' ORDER BY t.rowid LIMIT 1").fetchone()
        release, torrent = archive.conn.execute(
            "SELECT r.name, t.name FROM torrents t JOIN releases r ON r.id = t.release_id "
            "LIMIT 1").fetchone()
    return {"rowid": track, "album": album, "artist": artist, "sha256": sha,
            "release": release, "torrent": torrent}


def _urls(client: TestClient, path: Path) -> list[str]:
    """One working URL for every GET route of the app, plus static files."""
    facts = _facts(path)
    art = sha256_file(WITH_ART)[0]
    chart = re.search(r'src="(/charts/[a-z0-9_-]+\.png)"', client.get("/stats").text)[1]
    filled = {"/api/v1/search": "/api/v1/search?q=a", "/api/v1/lookup": "/api/v1/lookup?id=x",
              "/search": "/search?q=a", "/art/{sha256}": f"/art/{art}",
              "/charts/{name}.png": chart, "/api/v1/albums/{rowid}":
              f"/api/v1/albums/{facts['album']}", "/album/{rowid}": f"/album/{facts['album']}",
              "/api/v1/artists/{rowid}": f"/api/v1/artists/{facts['artist']}",
              "/artist/{rowid}": f"/artist/{facts['artist']}",
              "/releases/{release}/{name}.torrent":
              f"/releases/{facts['release']}/{facts['torrent']}.torrent"}
    urls = []
    for route in [*api.router.routes, *pages.router.routes]:
        if isinstance(route, APIRoute) and "GET" in route.methods:
            url = filled.get(route.path) or route.path.format(
                rowid=facts["rowid"], sha256=facts["sha256"])
            urls.append(url)
    return [*urls, "/api/v1/openapi.json", "/static/style.css", "/static/app.js"]


def test_every_get_route_is_covered(web) -> None:
    client, path = web
    urls = _urls(client, path)
    assert len(urls) >= 28 and "/favicon.ico" in urls and all("{" not in u for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url


def _assert_secure(response, url: str) -> None:
    for name in HEADERS:
        assert name in response.headers, (url, name, response.status_code)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
    assert response.headers["x-content-type-options"] == "nosniff", url
    assert response.headers["x-frame-options"] == "DENY", url
    assert response.headers["referrer-policy"] == "no-referrer", url


def test_every_response_carries_the_security_headers(web) -> None:
    client, path = web
    errors = ["/nowhere", "/api/v1/nowhere", "/api/v1/tracks/0", "/api/v1/tracks/123456789",
              "/track/abc", f"/art/{'f' * 64}", "/static/nothing.css", "/static"]
    for url in [*_urls(client, path), *errors]:
        _assert_secure(client.get(url, follow_redirects=False), url)
    _assert_secure(client.put("/api/v1/tracks/1"), "PUT")
    _assert_secure(client.post("/api/v1/lookup", content=b"{not json"), "POST")
    too_large = client.post("/api/v1/lookup", content=b"x" * 2_000_000,
                            headers={"Content-Type": "application/json"})
    assert too_large.status_code == 413
    _assert_secure(too_large, "413")


def test_an_internal_error_carries_the_security_headers(web) -> None:
    _, path = web
    app = create_app(path)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500 and "secret detail" not in response.text
    _assert_secure(response, "/boom")


@pytest.mark.parametrize("url,location", [
    ("/static", "/static/"), ("/search/?q=a", "/search?q=a"), ("/stats/", "/stats"),
    ("/api/v1/stats/", "/api/v1/stats"),
])
def test_redirects_never_reflect_the_host_header(web, url: str, location: str) -> None:
    client, _ = web
    response = client.get(url, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code in (307, 308), response.status_code
    assert response.headers["location"] == location
    _assert_secure(response, url)


def test_a_redirect_never_leaves_the_site(web) -> None:
    client, _ = web
    for url in ("//evil.example/", "//evil.example/stats/", "/\\evil.example/"):
        response = client.get(url, headers={"Host": "evil.example"}, follow_redirects=False)
        location = response.headers.get("location", "/")
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert "evil" not in location


def test_head_works_wherever_get_does(web) -> None:
    client, path = web
    for url in _urls(client, path):
        get, head = client.get(url), client.head(url)
        assert head.status_code == get.status_code == 200, (url, head.status_code)
        assert head.content == b"", url
        assert head.headers["content-type"] == get.headers["content-type"], url
        _assert_secure(head, url)
    assert client.head("/api/v1/tracks/123456789").status_code == 404


def test_favicon_is_a_small_real_icon(web) -> None:
    from PIL import Image

    client, _ = web
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] in (
        "image/x-icon", "image/vnd.microsoft.icon")
    assert icon.content.startswith(b"\x00\x00\x01\x00") and len(icon.content) < 20_000
    with Image.open(io.BytesIO(icon.content)) as image:
        assert image.format == "ICO" and image.size[0] >= 16
    assert 'rel="icon" href="/favicon.ico"' in client.get("/").text


def test_405_names_the_allowed_methods(web) -> None:
    client, _ = web
    response = client.put("/api/v1/tracks/1")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


# -- damaged files ------------------------------------------------------------------------

@pytest.fixture()
def small(tmp_path: Path, testdata: Path) -> tuple[Path, str, str]:
    """An archive of two real files: one with a JPEG cover, one whose picture is HTML."""
    hostile = tmp_path / "in" / "hostile.flac"
    hostile.parent.mkdir()
    shutil.copyfile(testdata / "audio" / "mutagen" / "silence-44-s.flac", hostile)
    audio = FLAC(hostile)
    audio.clear_pictures()
    picture = Picture()
    picture.type, picture.mime = 3, "text/html"
    picture.data = b"<script>alert(document.domain)</script>"
    audio.add_picture(picture)
    audio.save()
    with Archive.create(tmp_path / "archive", name="small") as archive:
        ingest(archive, [WITH_ART, hostile], workers=1, match=False)
    return tmp_path / "archive", sha256_file(WITH_ART)[0], sha256_file(hostile)[0]


def test_a_picture_that_is_html_is_never_served_as_art(small) -> None:
    path, art, hostile = small
    client = TestClient(create_app(path), raise_server_exceptions=False)
    good = client.get(f"/art/{art}")
    assert good.status_code == 200 and good.headers["content-type"] == "image/jpeg"
    bad = client.get(f"/art/{hostile}")
    assert bad.status_code == 404 and b"<script>" not in bad.content
    assert "alert(document.domain)" not in bad.text
    _assert_secure(bad, "/art")


def _damage(path: Path, sha: str, keep: int | None) -> tuple[Path, int]:
    """Truncates a store file to `keep` bytes (None: removes it); returns path and size."""
    stored = Store(path / "store").path_for(sha)
    size = stored.stat().st_size
    stored.chmod(0o644)
    if keep is None:
        stored.unlink()
    else:
        with open(stored, "r+b") as fh:
            fh.truncate(keep)
    return stored, size


def _fixity_events(path: Path) -> list[tuple[str, str, dict]]:
    with Archive.open(path, readonly=True) as archive:
        return [(subject, outcome, json.loads(detail)) for subject, outcome, detail in
                archive.conn.execute("SELECT subject, outcome, detail FROM events "
                                     "WHERE kind = 'fixity' ORDER BY id")]


def test_a_truncated_store_file_is_never_served_as_fine(small) -> None:
    path, sha, _ = small
    client = TestClient(create_app(path), raise_server_exceptions=False)
    assert client.get(f"/audio/{sha}").status_code == 200
    stored, size = _damage(path, sha, 1000)
    for url in (f"/audio/{sha}", f"/api/v1/files/{sha}/audio", f"/art/{sha}",
                f"/api/v1/files/{sha}"):
        response = client.get(url)
        assert response.status_code == 409, (url, response.status_code)
        assert "immutable" not in response.headers.get("cache-control", ""), url
        message = response.json()["error"] if "/api/" in url else response.text
        assert "damaged" in message and "1000" in message and str(size) in message, url
        assert client.head(url).status_code == 409, url
        assert client.get(url, headers={"Range": "bytes=0-99"}).status_code == 409, url
    events = _fixity_events(path)
    assert len(events) == 1, events  # found many times, recorded once
    subject, outcome, detail = events[0]
    assert subject == sha and outcome == "damaged"
    assert detail["path"] == str(stored) and detail["size_found"] == 1000
    assert detail["size_expected"] == size


def test_a_missing_store_file_is_damage_too(small) -> None:
    path, sha, _ = small
    client = TestClient(create_app(path), raise_server_exceptions=False)
    _, size = _damage(path, sha, None)
    response = client.get(f"/audio/{sha}")
    assert response.status_code == 409 and "missing" in response.text
    [(_, outcome, detail)] = _fixity_events(path)
    assert outcome == "damaged" and detail["size_found"] is None
    assert detail["size_expected"] == size


def test_a_damaged_file_is_not_offered_to_the_player(web, tmp_path: Path) -> None:
    _, base = web
    path = tmp_path / "copy"
    shutil.copytree(base, path, copy_function=shutil.copy2)  # own bytes, no shared inodes
    client = TestClient(create_app(path), raise_server_exceptions=False)
    track = _facts(path)["rowid"]
    before = client.get(f"/api/v1/tracks/{track}").json()
    played = before["audio_url"].rsplit("/", 1)[1]
    _damage(path, played, 10)
    after = client.get(f"/api/v1/tracks/{track}").json()
    damaged = next(f for f in after["files"] if f["sha256"] == played)
    assert damaged["damaged"] and not damaged["playable"]
    assert after["audio_url"] != before["audio_url"]
    page = client.get(f"/track/{track}").text
    assert "damaged" in page and f'src="/audio/{played}"' not in page


def test_damage_is_logged_when_the_catalog_cannot_take_the_event(small, caplog) -> None:
    """Another writer holds the catalog's lock: the file is still refused, at once, and the
    server log says the damage could not be recorded."""
    import sqlite3
    import time

    path, sha, _ = small
    app = create_app(path)
    app.state.damage.timeout = 0.2
    client = TestClient(app, raise_server_exceptions=False)
    _damage(path, sha, 5)
    holder = sqlite3.connect(path / "catalog.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level("ERROR", logger="musicark.serve"):
            started = time.monotonic()
            assert client.get(f"/audio/{sha}").status_code == 409
            assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any(sha in m and "damaged" in m for m in messages), messages
    assert any(sha in m and "could not be recorded" in m for m in messages), messages
    assert _fixity_events(path) == []


@pytest.mark.parametrize("head", [True, False])
def test_head_of_a_store_file_does_not_read_it(tmp_path: Path, head: bool) -> None:
    import asyncio

    from musicark.serve.middleware import HEAD_KEY, StoreFileResponse

    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 3_000_000)
    sent: list[dict] = []

    async def receive() -> dict:
        await asyncio.Event().wait()  # the client never goes away
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": [], "path": "/", HEAD_KEY: head}
    asyncio.run(StoreFileResponse(big)(scope, receive, send))
    assert sent[0]["status"] == 200
    assert (b"content-length", b"3000000") in sent[0]["headers"]
    assert sum(len(m.get("body", b"")) for m in sent[1:]) == (0 if head else 3_000_000)
