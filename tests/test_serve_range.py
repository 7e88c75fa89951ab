"""`Range` on every route that serves stored bytes, as RFC 9110 section 14 says: an unknown
unit or an invalid range is ignored (200, the whole file), 416 with `bytes */LEN` only when
no range of the set is satisfiable, unsatisfiable ranges of a set left out."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from musicark.ingest.store import Store
from musicark.serve import create_app
from musicark.serve.ranges import Unsatisfiable, byte_ranges
from musicark.serve.subsonic.users import Users
from serve_small import matched_file, small_archive

USER, PASSWORD = "rangetester", "pw"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    path = small_archive(tmp_path_factory.mktemp("range"))
    Users(path).add(USER, PASSWORD)
    track, sha = matched_file(path)
    body = Store(path / "store").path_for(sha).read_bytes()
    auth = f"u={USER}&p={PASSWORD}&id=tr-{track}"
    urls = [f"/audio/{sha}", f"/api/v1/files/{sha}/audio", f"/rest/stream?{auth}",
            f"/rest/download.view?{auth}"]
    return TestClient(create_app(path), raise_server_exceptions=False), urls, body


@pytest.mark.parametrize("header", ["items=0-5", "bytes=5-1", "bytes=a-b", "bytes=+1-2",
                                    "bytes=1_0-20", "bytes", "bytes=",
                                    "bytes=0-1,5-1", "by tes=0-5", "bytes=--5",
                                    "bytes=" + ",".join(["0-0"] * 101)])
def test_an_unknown_unit_or_an_invalid_range_is_ignored(served, header: str) -> None:
    client, urls, body = served
    for url in urls:
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 200, (url, header, response.text[:200])
        assert response.content == body, url


def test_unsatisfiable_is_416_with_the_length(served) -> None:
    client, urls, body = served
    for header in ("bytes=999999999-", f"bytes={len(body)}-", "bytes=-0",
                   f"bytes={len(body)}-{len(body) + 5}, 999999999-"):
        for url in urls:
            response = client.get(url, headers={"Range": header})
            assert response.status_code == 416, (url, header)
            assert response.headers["content-range"] == f"bytes */{len(body)}", url


def test_satisfiable_ranges_are_206_and_unsatisfiable_ones_are_left_out(served) -> None:
    client, urls, body = served
    for url in urls:
        part = client.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == body[10:20], url
        assert part.headers["content-range"] == f"bytes 10-19/{len(body)}"
        mixed = client.get(url, headers={"Range": "bytes=999999999-, -5, ,"})
        assert mixed.status_code == 206 and mixed.content == body[-5:], url
        assert client.head(url, headers={"Range": "items=1-2"}).status_code == 200, url


def test_byte_ranges_follow_the_grammar() -> None:
    assert byte_ranges("bytes=0-0", 10) == [(0, 1)]
    assert byte_ranges("BYTES=5-", 10) == [(5, 10)]
    assert byte_ranges("bytes=-20", 10) == [(0, 10)]
    assert byte_ranges("bytes=0-3, 2-5,8-100", 10) == [(0, 6), (8, 10)]
    assert byte_ranges("bytes=0-3, 12-", 10) == [(0, 4)]
    assert byte_ranges("bytes = 0-3", 10) is None  # no whitespace around "="
    assert byte_ranges("bytes=5-1", 10) is None
    assert byte_ranges("bytes=\u0661-2", 10) is None  # int() would read an Arabic-Indic 1
    with pytest.raises(Unsatisfiable):
        byte_ranges("bytes=10-", 10)
    with pytest.raises(Unsatisfiable):
        byte_ranges("bytes=-5", 0)
