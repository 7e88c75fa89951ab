"""The cache of recent searches and lookups (serve/cache.py): repeated requests are answered
from memory with the same bytes and headers, a catalog change drops it at once, errors and
other paths are never cached, entries expire and the memory is bounded."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.serve import create_app
from musicark.serve.cache import CACHE_HEADER, ResponseCache
from musicark.serve.middleware import SECURITY_HEADERS
from musicark.synth import write_catalog

HIT = CACHE_HEADER.decode()


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    write_catalog(root / "catalog.csv", 2000, seed=5)
    with Archive.create(root / "archive", name="cache test") as archive:
        import_source(archive, "table", root / "catalog.csv")
    return root / "archive"


def _word(path: Path) -> tuple[int, str]:
    with Archive.open(path, readonly=True) as archive:
        rowid, name = archive.conn.execute(
            "SELECT rowid, name FROM tracks ORDER BY popularity DESC LIMIT 1").fetchone()
    return rowid, max(name.split(), key=len)


def test_repeated_search_is_answered_from_memory_with_the_same_bytes(archive_path) -> None:
    _, word = _word(archive_path)
    with TestClient(create_app(archive_path)) as client:
        for url in (f"/api/v1/search?q={word}", "/api/v1/lookup?id=nothing", f"/search?q={word}"):
            first, second = client.get(url), client.get(url)
            assert first.status_code == second.status_code == 200
            assert (first.headers[HIT], second.headers[HIT]) == ("miss", "hit")
            assert first.content == second.content
            assert first.headers["content-type"] == second.headers["content-type"]
            for name, value in SECURITY_HEADERS.items():  # hits pass the security layer
                assert second.headers[name] == value
        url = f"/api/v1/search?q={word}"
        head = client.head(url)
        assert head.status_code == 200 and head.headers[HIT] == "hit" and head.content == b""
        assert int(head.headers["content-length"]) == len(client.get(url).content)
        # Another spelling of the query is another key; it is computed afresh.
        assert client.get(f"/api/v1/search?q={word}&limit=20").headers[HIT] == "miss"


def test_a_catalog_change_drops_the_cache_at_once(archive_path) -> None:
    rowid, word = _word(archive_path)
    url = f"/api/v1/search?q={word}&limit=100"
    with TestClient(create_app(archive_path, cache_seconds=3600)) as client:
        before = client.get(url).json()
        assert client.get(url).headers[HIT] == "hit"
        with Archive.open(archive_path) as archive:  # another process writes to the catalog
            old = archive.conn.execute("SELECT name FROM tracks WHERE rowid = ?",
                                       (rowid,)).fetchone()[0]
            archive.conn.execute("UPDATE tracks SET name = ? WHERE rowid = ?",
                                 (f"{old} renamed", rowid))
        try:
            after = client.get(url)
            assert after.headers[HIT] == "miss"
            names = {r["rowid"]: r["name"] for r in after.json()["results"]}
            assert names[rowid] == f"{old} renamed"
            assert {r["rowid"]: r["name"] for r in before["results"]}[rowid] == old
        finally:
            with Archive.open(archive_path) as archive:
                archive.conn.execute("UPDATE tracks SET name = ? WHERE rowid = ?", (old, rowid))


@pytest.mark.parametrize("url", ["/api/v1/search?q=a&limit=0", "/api/v1/search?q=a&after=x",
                                 "/api/v1/search", "/api/v1/lookup?id=" + "x" * 201])
def test_errors_are_never_cached(archive_path, url: str) -> None:
    with TestClient(create_app(archive_path), raise_server_exceptions=False) as client:
        answers = [client.get(url) for _ in range(2)]
        assert all(400 <= a.status_code < 500 for a in answers)
        assert [a.headers[HIT] for a in answers] == ["miss", "miss"]


def test_other_paths_and_a_zero_lifetime_are_not_cached(archive_path) -> None:
    rowid, word = _word(archive_path)
    with TestClient(create_app(archive_path)) as client:
        assert HIT not in client.get(f"/api/v1/tracks/{rowid}").headers
        assert HIT not in client.get("/api/v1/search", params={"q": word},
                                     headers={"content-length": "0"}).headers
    with TestClient(create_app(archive_path, cache_seconds=0)) as client:
        answers = [client.get(f"/api/v1/search?q={word}") for _ in range(2)]
        assert all(a.status_code == 200 and HIT not in a.headers for a in answers)


def test_entries_expire(archive_path) -> None:
    """An entry answers until its lifetime is over, and not one tick after (a clock the
    test moves, so no sleep can be too short on a busy machine)."""
    _, word = _word(archive_path)
    app = create_app(archive_path, cache_seconds=30)
    now = [1000.0]
    with TestClient(app) as client:
        client.get("/api/v1/lookup?id=warm")
        app.state.response_cache.recent.clock = lambda: now[0]
        assert client.get(f"/api/v1/search?q={word}").headers[HIT] == "miss"
        now[0] += 29.5
        assert client.get(f"/api/v1/search?q={word}").headers[HIT] == "hit"
        now[0] += 0.5
        assert client.get(f"/api/v1/search?q={word}").headers[HIT] == "miss"
        assert client.get(f"/api/v1/search?q={word}").headers[HIT] == "hit"  # kept afresh


def test_memory_is_bounded_least_recently_used_first_out(archive_path) -> None:
    app = create_app(archive_path)
    with TestClient(app) as client:
        client.get("/api/v1/lookup?id=warm")
        cache: ResponseCache = app.state.response_cache
        cache.recent.max_bytes = 3000
        for i in range(40):
            assert client.get(f"/api/v1/lookup?id=x{i}").status_code == 200
        assert cache.stats()["bytes"] <= 3000 and 0 < cache.stats()["entries"] < 40
        assert client.get("/api/v1/lookup?id=x39").headers[HIT] == "hit"
        assert client.get("/api/v1/lookup?id=x0").headers[HIT] == "miss"


def test_the_subsonic_snapshot_starts_with_serving_not_with_building_the_app(
        archive_path) -> None:
    """`serve --workers N` builds an app in the parent only to check the archive: it must
    not spend seconds of CPU per million songs on a snapshot no request will read."""
    app = create_app(archive_path)
    time.sleep(0.2)
    library = app.state.subsonic.library
    assert library._snapshot is None
    assert not any(t.name == "subsonic-snapshot" for t in threading.enumerate())
    with TestClient(app):  # the server's start (lifespan) warms it in the background
        deadline = time.monotonic() + 30
        while library._snapshot is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert library._snapshot is not None


def test_snapshots_stay_out_of_the_collector_and_are_freed_when_replaced(archive_path) -> None:
    """A full collection walking a 1 M-song snapshot paused every request for ~0.4 s."""
    from musicark.serve.subsonic.library import Library

    library = Library(archive_path / "catalog.sqlite")
    first = library.get()
    assert gc.get_freeze_count() > 0 and gc.isenabled()
    assert not any(o is first for o in gc.get_objects())  # frozen: no collection walks it
    gone = weakref.ref(first)
    del first
    library._build()  # a new snapshot replaces the old one
    assert gone() is None  # reference counting freed it, frozen or not
    library._conn.close()
