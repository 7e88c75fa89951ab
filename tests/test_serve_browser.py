"""The web UI in a real browser: Playwright driving Debian's Chromium (never a downloaded
one), against a live server: search as you type, open a track, play, seek, stats charts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from live_server import InProcess
from musicark.archive import Archive
from musicark.serve import create_app
from serve_fixture import build

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    path = build(tmp_path_factory.mktemp("browser"))
    web = InProcess(create_app(path))
    yield web.url, path
    web.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking",
                  "--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        yield chromium
        chromium.close()


def _page(browser):
    """A new page that records every Content-Security-Policy violation it meets."""
    page = browser.new_page()
    page.violations = []
    page.on("console", lambda m: page.violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    return page


def _preserved(path: Path) -> tuple[int, str]:
    with Archive.open(path, readonly=True) as archive:
        return archive.conn.execute(
            "SELECT t.rowid, t.name FROM track_files tf JOIN tracks t ON t.rowid = "
            "tf.track_rowid ORDER BY t.popularity DESC, t.rowid LIMIT 1").fetchone()


def test_search_open_play_and_seek(server, browser, tmp_path: Path) -> None:
    base, path = server
    rowid, name = _preserved(path)
    page = _page(browser)
    page.goto(base + "/")
    page.fill("#q", name)  # typed, not submitted: results arrive as you type
    link = page.locator(f'#results a[href="/track/{rowid}"]')
    link.wait_for(timeout=10_000)
    assert "/search?q=" in page.url
    page.screenshot(path=str(tmp_path / "search.png"))
    link.click()
    page.wait_for_url(re.compile(rf"/track/{rowid}$"))
    player = page.locator("#player")
    player.wait_for()
    player.evaluate("a => a.play()")  # the play button of the native controls
    page.wait_for_function(
        "() => document.querySelector('#player').currentTime > 0.5", timeout=20_000)
    duration = player.evaluate("a => a.duration")
    assert duration > 5
    player.evaluate(f"a => {{ a.currentTime = {duration / 2}; }}")  # seek: Range requests
    page.wait_for_function(
        f"() => document.querySelector('#player').currentTime >= {duration / 2}",
        timeout=20_000)
    assert player.evaluate("a => a.error") is None
    page.screenshot(path=str(tmp_path / "track.png"))
    assert page.violations == []


def test_stats_page_shows_its_charts(server, browser, tmp_path: Path) -> None:
    base, _ = server
    page = _page(browser)
    page.goto(base + "/stats")
    charts = page.locator("img.chart")
    assert charts.count() >= 3
    for i in range(charts.count()):
        charts.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100",
                               arg=charts.nth(i).element_handle(), timeout=20_000)
    page.screenshot(path=str(tmp_path / "stats.png"), full_page=True)
    assert page.violations == []


def test_radio_plays_uniformly_drawn_tracks(server, browser) -> None:
    base, _ = server
    page = _page(browser)
    page.goto(base + "/radio")
    page.click("#radio-next")
    page.wait_for_function(
        "() => document.querySelector('#radio-player').currentTime > 0.3", timeout=20_000)
    first = page.locator("#now a").get_attribute("href")
    assert first.startswith("/track/")
    assert page.violations == []


def test_the_policy_blocks_inline_script(server, browser) -> None:
    """The headers really reach the browser: a script injected inline does not run, and
    the browser reports the violation (so the checks above can see one)."""
    base, _ = server
    page = _page(browser)
    page.goto(base + "/")
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.injected = 1'; document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.injected") is None
    assert any("script" in v for v in page.violations), page.violations


def test_album_queue_plays_in_order_with_keys(server, browser, tmp_path: Path) -> None:
    base, path = server
    with Archive.open(path, readonly=True) as archive:
        album = archive.conn.execute(
            "SELECT t.album_rowid FROM track_files tf JOIN tracks t ON t.rowid = "
            "tf.track_rowid JOIN files f ON f.rowid = tf.file_rowid AND f.status = 'ok' "
            "WHERE t.album_rowid IS NOT NULL GROUP BY 1 ORDER BY count(DISTINCT t.rowid) "
            "DESC, 1 LIMIT 1").fetchone()[0]
    page = _page(browser)
    page.goto(f"{base}/album/{album}")
    size = page.evaluate("() => window.musicarkQueue.size()")
    assert size >= 1
    page.click("#play-all")
    page.wait_for_function(
        "() => document.querySelector('#queue-player').currentTime > 0.3", timeout=20_000)
    assert page.evaluate("() => window.musicarkQueue.position()") == 0
    assert page.locator("#album-tracks tr.playing").count() == 1
    page.keyboard.press("Space")  # pause
    page.wait_for_function("() => document.querySelector('#queue-player').paused")
    if size > 1:
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => window.musicarkQueue.position() === 1")
        page.wait_for_function(
            "() => document.querySelector('#queue-player').currentTime > 0.3", timeout=20_000)
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => window.musicarkQueue.position() === 0")
    page.screenshot(path=str(tmp_path / "album.png"), full_page=True)
    assert page.violations == []


def test_home_shows_albums_and_search_keeps_its_filter(server, browser, tmp_path: Path) -> None:
    base, _ = server
    page = _page(browser)
    page.goto(base + "/")
    assert page.locator(".album-card").count() >= 1
    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)
    page.fill("#q", "a")
    page.locator("#show-all").wait_for(timeout=10_000)
    page.click("#show-all")
    page.wait_for_url(re.compile(r"preserved=false"))
    page.fill("#q", "an")  # typing again keeps the page's choice
    page.locator("#show-preserved").wait_for(timeout=10_000)
    assert "preserved=false" in page.url
    assert page.violations == []
