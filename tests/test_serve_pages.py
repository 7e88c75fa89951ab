"""The web UI's pages show the archive: the home page's albums with audio and latest
release, search that keeps to tracks with audio by default, album pages with a queue,
artist pages with album art, and what each tagged copy's own tags say."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from musicark.archive import Archive
from musicark.serve import create_app
from serve_fixture import build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Archive]:
    path = build(tmp_path_factory.mktemp("pages"))
    archive = Archive.open(path, readonly=True)
    yield TestClient(create_app(path), raise_server_exceptions=False), archive
    archive.close()


def one(archive: Archive, sql: str, *args):
    return archive.conn.execute(sql, args).fetchone()


def test_home_shows_tracks_with_audio_albums_and_the_latest_release(site) -> None:
    client, archive = site
    with_audio = one(archive, "SELECT count(DISTINCT tf.track_rowid) FROM track_files tf "
                     "JOIN files f ON f.rowid = tf.file_rowid WHERE f.status = 'ok'")[0]
    files = one(archive, "SELECT count(*) FROM files WHERE status = 'ok'")[0]
    assert files > with_audio  # copies, encodes and patches are not tracks
    page = client.get("/").text
    assert f"{with_audio:,} tracks with audio" in page and "files preserved" not in page
    albums = {int(a) for a in re.findall(r'class="album-card"><a href="/album/(\d+)"', page)}
    held = {a for (a,) in archive.conn.execute(
        "SELECT DISTINCT t.album_rowid FROM track_files tf JOIN tracks t ON t.rowid = "
        "tf.track_rowid WHERE t.album_rowid IS NOT NULL")}
    assert albums and albums <= held
    assert 'id="most-listened"' in page and 'id="recently-added"' in page
    assert 'Latest release: <a href="/releases">r1</a>' in page


def test_search_keeps_to_tracks_with_audio_unless_asked(site) -> None:
    client, archive = site
    held = {t for (t,) in archive.conn.execute("SELECT track_rowid FROM track_files")}
    default = client.get("/search", params={"q": "a"}).text
    shown = {int(t) for t in re.findall(r'href="/track/(\d+)"', default)}
    assert shown and shown <= held and 'id="show-all"' in default
    everything = client.get("/search", params={"q": "a", "preserved": "false"}).text
    assert {int(t) for t in re.findall(r'href="/track/(\d+)"', everything)} - held
    # Artists are links, in credit order.
    rowid, name = one(archive, "SELECT a.rowid, a.name FROM track_artists ta JOIN artists a "
                      "ON a.rowid = ta.artist_rowid WHERE ta.track_rowid IN (SELECT "
                      "track_rowid FROM track_files) ORDER BY ta.track_rowid LIMIT 1")
    found = client.get("/search", params={"q": name}).text
    assert f'<a href="/artist/{rowid}">{escape(name)}</a>' in found


def test_an_exact_album_name_gets_its_chip(site) -> None:
    client, archive = site
    rowid, name = one(archive, "SELECT al.rowid, al.name FROM albums al WHERE al.rowid IN "
                      "(SELECT album_rowid FROM tracks WHERE rowid IN (SELECT track_rowid "
                      "FROM track_files)) AND al.name GLOB '[A-Za-z]*' ORDER BY al.rowid "
                      "LIMIT 1")
    page = client.get("/search", params={"q": name.upper()}).text
    assert re.search(rf'<a class="chip exact" href="/album/{rowid}">', page), name


def test_album_page_lists_tracks_in_order_with_a_queue(site) -> None:
    client, archive = site
    album = one(archive, "SELECT t.album_rowid FROM track_files tf JOIN tracks t ON t.rowid "
                "= tf.track_rowid WHERE t.album_rowid IS NOT NULL LIMIT 1")[0]
    order = [r for (r,) in archive.conn.execute(
        "SELECT rowid FROM tracks WHERE album_rowid = ? ORDER BY disc_number, track_number, "
        "rowid", (album,))]
    page = client.get(f"/album/{album}").text
    shown = [int(t) for t in re.findall(r'class="track-link" href="/track/(\d+)"', page)]
    assert shown == order
    assert 'id="play-all"' in page and 'id="queue-player"' in page
    assert page.count('data-audio="/audio/') == page.count('class="play"') >= 1


def test_artist_page_shows_albums_with_audio(site) -> None:
    client, archive = site
    artist, album = one(archive, "SELECT aa.artist_rowid, aa.album_rowid FROM album_artists "
                        "aa JOIN tracks t ON t.album_rowid = aa.album_rowid JOIN track_files "
                        "tf ON tf.track_rowid = t.rowid LIMIT 1")
    page = client.get(f"/artist/{artist}").text
    assert "Albums with audio" in page
    assert f'class="album-card"><a href="/album/{album}"' in page


def test_tagged_copies_show_what_their_tags_say(site) -> None:
    client, archive = site
    track, title = one(archive, """
        SELECT tf.track_rowid, t.name FROM derivations d
          JOIN track_files tf ON tf.file_rowid = d.input_file
          JOIN tracks t ON t.rowid = tf.track_rowid
         WHERE d.kind = 'tagged' ORDER BY d.output_file LIMIT 1""")
    page = client.get(f"/track/{track}").text
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    tagged = [r for r in rows if "<td>tagged</td>" in r]
    assert tagged and all(str(escape(title)) in r for r in tagged)
