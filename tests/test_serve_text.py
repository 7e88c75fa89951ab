"""Characters XML 1.0 forbids (U+FFFE, U+FFFF, C0 controls, lone surrogates) in stored
titles, tags and catalog JSON: the Subsonic XML still parses with a strict parser, the JSON
API and pages still answer 200 with valid UTF-8."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import musicark
from musicark.archive import Archive
from musicark.serve import create_app
from musicark.serve.subsonic.responses import render
from musicark.serve.subsonic.users import Users
from serve_small import matched_file, small_archive

USER, PASSWORD = "texttester", "pw"
TITLE = "Bad\ufffe\uffff\x01\x0b\x1fTitle"
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    path = small_archive(tmp_path_factory.mktemp("text"))
    Users(path).add(USER, PASSWORD)
    track, sha = matched_file(path)
    with Archive.open(path) as archive:
        album = archive.conn.execute("SELECT album_rowid FROM tracks WHERE rowid = ?",
                                     (track,)).fetchone()[0]
        archive.conn.execute("UPDATE tracks SET name = ?, extra = ? WHERE rowid = ?",
                             (TITLE, '{"note": "lone \\ud800 surrogate"}', track))
        archive.conn.execute("UPDATE albums SET name = ? WHERE rowid = ?",
                             ("Album\uffff\x02", album))
        archive.conn.execute("UPDATE files SET common = ? WHERE sha256 = ?",
                             ('{"title": "tag \\udc80 title", "artists": ["x\\ud83d"]}', sha))
    client = TestClient(create_app(path), raise_server_exceptions=False)
    return client, track, album


def _xml(client: TestClient, method: str, **params) -> ET.Element:
    response = client.get(f"/rest/{method}", params={"u": USER, "p": PASSWORD, **params})
    assert response.status_code == 200
    root = ET.fromstring(response.content)  # expat: refuses every character XML forbids
    assert root.get("status") == "ok", response.text[:300]
    return root


def test_subsonic_xml_parses_with_a_strict_parser(served) -> None:
    client, track, album = served
    song = _xml(client, "getSong", id=f"tr-{track}")[0]
    assert song.get("title") == "Bad\ufffd\ufffd\ufffd\ufffd\ufffdTitle"
    assert _xml(client, "getAlbum", id=f"al-{album}")[0].get("name") == "Album\ufffd\ufffd"
    found = _xml(client, "search3", query='""', songCount=500, albumCount=0, artistCount=0)
    assert f"tr-{track}" in {s.get("id") for s in found.iter("{http://subsonic.org/restapi}song")}
    as_json = client.get("/rest/getSong", params={"u": USER, "p": PASSWORD, "f": "json",
                                                  "id": f"tr-{track}"}).json()
    assert as_json["subsonic-response"]["song"]["title"] == TITLE  # JSON can carry them


def test_a_lone_surrogate_is_sent_as_a_replacement_character() -> None:
    payload = {"song": {"title": "a\ud800b", "value": "\udfff"}, "x": ["\ud83d"]}
    xml = render(payload, "xml").body
    assert ET.fromstring(xml).find("{http://subsonic.org/restapi}song").get("title") == "a\ufffdb"
    assert json.loads(render(payload, "json").body)["subsonic-response"]["x"] == ["\ufffd"]


def test_json_api_and_pages_serve_rows_holding_them(served) -> None:
    client, track, album = served
    response = client.get(f"/api/v1/tracks/{track}")
    assert response.status_code == 200, response.text[:300]
    info = json.loads(response.content.decode("utf-8"))
    assert info["extra"] == {"note": "lone \ufffd surrogate"}
    files = client.get(f"/api/v1/tracks/{track}/files")
    assert files.status_code == 200 and "tag \ufffd title" in files.content.decode("utf-8")
    for url in (f"/track/{track}", f"/album/{album}", "/search?q=Title"):
        page = client.get(url)
        assert page.status_code == 200, (url, page.text[:300])
        text = page.content.decode("utf-8")  # strict: valid UTF-8
        assert not NOT_XML.search(text), url
    assert "tag \ufffd title" in client.get(f"/track/{track}").text


def test_show_prints_a_row_holding_a_lone_surrogate(served) -> None:
    """`musicark show`, a table and --json, on a real UTF-8 stdout (not a test runner's)."""
    client, track, _ = served
    path = client.app.state.archives.path
    env = {**os.environ, "PYTHONPATH": str(Path(musicark.__file__).parents[1]),
           "PYTHONIOENCODING": "utf-8"}
    for extra in ([], ["--json"]):
        result = subprocess.run([sys.executable, "-m", "musicark", "show", f"track:{track}",
                                 "-a", str(path), *extra], capture_output=True, env=env,
                                timeout=120, check=False)
        assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
        text = result.stdout.decode("utf-8")  # strict
        assert "\\ud800" in text, extra
        if extra:
            assert json.loads(text)["extra"] == {"note": "lone \ud800 surrogate"}
