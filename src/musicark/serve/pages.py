"""Server-rendered pages (Jinja2, autoescaped): fast without JavaScript; app.js adds search
as you type and the radio."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from musicark.archive import Archive
from musicark.catalog import search as catalog
from musicark.listens.stats import artist_listens, listen_stats, track_listens
from musicark.serve import queries, showcase
from musicark.serve.api import stream, with_preservation
from musicark.serve.art import cover_art
from musicark.serve.deps import ID_MAX, SHA256_PATTERN, archive_dep, thread_archive_dep
from musicark.serve.middleware import StoreFileResponse
from musicark.serve.text import html_value

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.finalize = html_value  # no character XML forbids reaches a page (serve/text.py)
router = APIRouter(include_in_schema=False)
ArchiveDep = Annotated[Archive, Depends(archive_dep)]
ThreadArchiveDep = Annotated[Archive, Depends(thread_archive_dep)]


def page(request: Request, name: str, **context: Any) -> HTMLResponse:
    archive_name = request.app.state.archive_name
    return templates.TemplateResponse(request, name, {"archive_name": archive_name, **context})


@router.get("/", response_class=HTMLResponse)
def home(request: Request, archive: ThreadArchiveDep) -> HTMLResponse:
    counts = dict(zip(("tracks", "albums", "artists"), archive.conn.execute(
        "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM albums), "
        "(SELECT count(*) FROM artists)").fetchone(), strict=True))
    counts["with_audio"] = showcase.tracks_with_audio(archive)
    art = request.app.state.art.get
    recent = showcase.with_art(archive, showcase.albums_with_audio(archive, "recent"), art)
    listened = showcase.with_art(archive, showcase.albums_with_audio(archive, "listened"), art)
    return page(request, "home.html", counts=counts, recent=recent, listened=listened,
                release=showcase.latest_release(archive))


def _has_audio(archive: Archive) -> bool:
    return archive.conn.execute(
        "SELECT 1 FROM files WHERE status = 'ok' LIMIT 1").fetchone() is not None


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, archive: ArchiveDep,
           q: Annotated[str, Query(max_length=500)] = "",
           after: Annotated[str | None, Query(max_length=40)] = None,
           preserved: Annotated[bool | None, Query(
               description="Only tracks with audio (default: on when the archive holds files)")
           ] = None,
           fragment: bool = False) -> HTMLResponse:
    only = _has_audio(archive) if preserved is None else preserved
    rows, cursor = catalog.search_page(archive, q, limit=25, after=after,
                                       preserved_only=only) if q.strip() else ([], None)
    related = queries.matching_entities(archive, rows, q) if q.strip() and not after else {}
    context = {"q": q, "rows": showcase.artist_links(archive, with_preservation(archive, rows)),
               "next_cursor": cursor, "related": related, "preserved_only": only}
    return page(request, "_results.html" if fragment else "search.html", **context)


@router.get("/track/{rowid}", response_class=HTMLResponse)
async def track(request: Request, archive: ArchiveDep,
          rowid: Annotated[int, ID_MAX]) -> HTMLResponse:
    info = catalog.track(archive, rowid)
    files = queries.track_files(archive, rowid)
    best = queries.best_playable(files)
    art = next((f["sha256"] for f in files if f["status"] == "ok" and f["media_type"]
                and not f["damaged"] and request.app.state.art.get(archive, f["sha256"])),
               None)
    return page(request, "track.html", t=info, files=files, play=best, art=art,
                observed=track_listens(archive, rowid))


@router.get("/album/{rowid}", response_class=HTMLResponse)
def album(request: Request, archive: ThreadArchiveDep,
          rowid: Annotated[int, ID_MAX]) -> HTMLResponse:
    info = catalog.album(archive, rowid)
    rows = showcase.artist_links(archive, with_preservation(archive, info["tracks"]))
    art = next((r["preserved"]["play"] for r in rows if r["preserved"]
                and r["preserved"]["play"]
                and request.app.state.art.get(archive, r["preserved"]["play"])), None)
    return page(request, "album.html", a=info, rows=rows, art=art,
                playable=sum(1 for r in rows if r["audio_url"]))


@router.get("/artist/{rowid}", response_class=HTMLResponse)
def artist(request: Request, archive: ThreadArchiveDep,
           rowid: Annotated[int, ID_MAX]) -> HTMLResponse:
    info = catalog.artist(archive, rowid)
    held = showcase.with_art(archive, showcase.albums_with_audio(
        archive, "listened", limit=100, artist=rowid), request.app.state.art.get)
    held_ids = {a["rowid"] for a in held}
    others = [a for a in info["albums"] if a["rowid"] not in held_ids]
    return page(request, "artist.html", a=info, held=held, others=others,
                rows=showcase.artist_links(archive, with_preservation(archive, info["tracks"])),
                observed=artist_listens(archive, rowid))


@router.get("/audio/{sha256}")
def audio(archive: ThreadArchiveDep, sha256: Annotated[str, SHA256_PATTERN]) -> Response:
    return stream(archive, sha256)


@router.get("/art/{sha256}")
def art(request: Request, archive: ThreadArchiveDep,
        sha256: Annotated[str, SHA256_PATTERN]) -> Response:
    queries.stored_file(archive, sha256)  # 404 unknown, 409 damaged (even if art is cached)
    found = request.app.state.art.get(archive, sha256)
    if found is None:
        return Response(status_code=404)
    data, mime = found
    return Response(data, media_type=mime,
                    headers={"Cache-Control": "public, max-age=31536000, immutable",
                             "X-Content-Type-Options": "nosniff"})


@router.get("/favicon.ico")
async def favicon() -> Response:
    return StoreFileResponse(HERE / "static" / "favicon.ico", media_type="image/x-icon",
                             headers={"Cache-Control": "public, max-age=86400"})


@router.get("/api", response_class=HTMLResponse)
async def api_reference(request: Request) -> HTMLResponse:
    """The JSON API's operations, read from its own OpenAPI schema."""
    spec = request.app.openapi()
    operations = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            params = [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                       "description": p.get("description") or "",
                       "schema": p.get("schema", {})} for p in op.get("parameters", [])]
            operations.append({"method": method.upper(), "path": path,
                               "summary": op.get("summary", ""), "params": params,
                               "body": "requestBody" in op})
    return page(request, "api.html", operations=operations)


@router.get("/radio", response_class=HTMLResponse)
async def radio(request: Request) -> HTMLResponse:
    return page(request, "radio.html")


@router.get("/stats", response_class=HTMLResponse)
def stats(request: Request, archive: ThreadArchiveDep) -> HTMLResponse:
    charts = request.app.state.charts.names(archive)
    observed = listen_stats(archive, top=10) if archive.conn.execute(
        "SELECT 1 FROM listen_counts LIMIT 1").fetchone() else None
    return page(request, "stats.html", charts=charts, observed=observed)


@router.get("/charts/{name}.png")
def chart(request: Request, archive: ThreadArchiveDep,
          name: Annotated[str, PathParam(pattern=r"^[a-z0-9_-]{1,60}$")]) -> Response:
    data = request.app.state.charts.png(archive, name)
    if data is None:
        return Response(status_code=404)
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=300"})


@router.get("/releases", response_class=HTMLResponse)
async def releases(request: Request, archive: ArchiveDep) -> HTMLResponse:
    return page(request, "releases.html", torrents=queries.releases(archive))


@router.get("/releases/{release}/{name}.torrent")
def torrent(archive: ThreadArchiveDep, release: Annotated[str, PathParam(max_length=255)],
            name: Annotated[str, PathParam(max_length=255)]) -> Response:
    path = queries.torrent_file(archive, release, name)
    return Response(path.read_bytes(), media_type="application/x-bittorrent",
                    headers={"Content-Disposition": f'attachment; filename="{name}.torrent"'})


class ArtCache:
    """Embedded cover art by file SHA-256 (None cached too: most files have none), oldest
    out first, capped in count and in bytes: pictures are up to many MB each, so a count
    alone let a process hold gigabytes. A picture over a quarter of the cap is served but
    not kept."""

    def __init__(self, size: int = 512, max_bytes: int = 32 << 20) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[bytes, str] | None] = {}
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0

    def get(self, archive: Archive, sha256: str) -> tuple[bytes, str] | None:
        with self._lock:
            if sha256 in self._items:
                return self._items[sha256]
        try:
            path, _ = queries.stored_file(archive, sha256)
        except Exception:  # noqa: BLE001 - unknown or withdrawn files have no art
            return None
        found = cover_art(path)
        weight = len(found[0]) if found else 0
        if weight > self._max_bytes // 4:
            return found
        with self._lock:
            if sha256 not in self._items:
                while self._items and (len(self._items) >= self._size
                                       or self._bytes + weight > self._max_bytes):
                    old = self._items.pop(next(iter(self._items)))
                    self._bytes -= len(old[0]) if old else 0
                self._items[sha256] = found
                self._bytes += weight
        return found

    @property
    def held_bytes(self) -> int:
        return self._bytes


class ChartCache:
    """The charts of `musicark stats` and the coverage curve, rendered once per process
    (matplotlib is not thread-safe: one lock) into memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._png: dict[str, bytes] | None = None

    def _render(self, archive: Archive) -> dict[str, bytes]:
        import tempfile

        from musicark.catalog.plots import render
        from musicark.catalog.stats import catalog_stats
        from musicark.plan.coverage import coverage
        from musicark.plan.coverage import plot as coverage_plot

        with self._lock:
            if self._png is None:
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp)
                    paths = render(catalog_stats(archive), out)
                    # An empty catalog has no coverage curve.
                    with contextlib.suppress(Exception):
                        paths.append(coverage_plot(coverage(archive), out / "plan-coverage.png"))
                    self._png = {p.stem: p.read_bytes() for p in paths}
            return self._png

    def names(self, archive: Archive) -> list[str]:
        return sorted(self._render(archive))

    def png(self, archive: Archive, name: str) -> bytes | None:
        return self._render(archive).get(name)
