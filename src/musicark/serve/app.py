"""The web application: FastAPI + Jinja2 over a read-only archive.

`create_app(path)` is what `musicark serve` runs and what tests and embedders call. The
catalog is opened read-only (one connection per server thread); the app has no endpoint
that writes (its one write is the fixity event of a damaged file it finds: serve/damage.py).
Library errors become JSON (under /api) or an HTML page with the right 4xx status; anything
unexpected is a 500 with no stack trace in the response; no error names a server path
(serve/text.py). Every response carries the security headers of serve/middleware.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from musicark import __version__, db
from musicark.archive import Archive
from musicark.catalog.schema import MIGRATIONS
from musicark.errors import BadConfig, BadQuery, DamagedFile, MusicarkError, NotInCatalog
from musicark.serve import api, pages, subsonic
from musicark.serve.cache import TTL, ResponseCache
from musicark.serve.damage import DamageLog
from musicark.serve.deps import Archives
from musicark.serve.middleware import SecureResponses
from musicark.serve.queries import PreservedTracks
from musicark.serve.text import public_message

log = logging.getLogger("musicark.serve")
SERVE_ENV = "MUSICARK_SERVE_ARCHIVE"
RECORD_PLAYS_ENV = "MUSICARK_SERVE_RECORD_PLAYS"
CACHE_ENV = "MUSICARK_SERVE_CACHE_SECONDS"
OPEN_SUBSONIC_ENV = "MUSICARK_SERVE_OPEN_SUBSONIC"
STATUS = {NotInCatalog: 404, BadQuery: 400, DamagedFile: 409}
MAX_BODY = 1024 * 1024  # the one body the API takes, a lookup of 1,000 ids, is ~210 kB


class ArchiveApp(FastAPI):
    """FastAPI with SecureResponses around its whole middleware stack, outside even the
    layers that answer a 500 or a too-large body themselves, so that no response leaves
    without the security headers; inside it, the cache of recent searches and lookups."""

    def build_middleware_stack(self):  # noqa: ANN201 - Starlette's ASGI app type
        cache = ResponseCache(super().build_middleware_stack(), self.state.archives,
                              ttl=self.state.cache_seconds)
        self.state.response_cache = cache
        return SecureResponses(cache)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """What a serving process does when it starts: begin the Subsonic snapshot in the
    background (an app only built, as `serve --workers N` builds one in the parent process
    to check the archive, never starts one)."""
    app.state.subsonic.library.warm()
    yield


def create_app(path: Path | str, *, record_plays: bool = False,
               cache_seconds: float = TTL, open_subsonic: bool = False) -> FastAPI:
    """The app for the archive at `path` (whose schema must be current: `Archive.open(path)`
    upgrades it; `musicark serve` does that before serving). `record_plays`: Subsonic
    scrobbles are appended to ARCHIVE/plays.jsonl (never to the catalog). `cache_seconds`:
    how long an identical search or lookup may be answered from memory while the catalog is
    unchanged (serve/cache.py; 0 turns the cache off). `open_subsonic`: while the archive
    has no Subsonic user, callers from a loopback address use the Subsonic API without a
    login (otherwise, and always with a broken users file, every login is refused)."""
    archive = Archive.open(path, readonly=True)  # fails early on a missing archive
    name, catalog = archive.settings.name, archive.catalog_path
    version, wanted = db.schema_version(archive.conn), len(MIGRATIONS)
    archive.close()
    if version < wanted:
        raise BadConfig(f"{path}: catalog schema {version} is older than this musicark's "
                        f"({wanted}); open it once read-write to upgrade (musicark serve does)")
    app = ArchiveApp(title=f"musicark: {name}", version=__version__,
                     description="Read-only API of a musicark archive: search, lookups, "
                                 "tracks, files, statistics, random tracks and releases.",
                     openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
                     max_body_size=MAX_BODY, lifespan=lifespan)
    # No Swagger UI: it loads its scripts from a CDN, and an archive's pages must work
    # offline and tell no third party who reads them. /api lists the operations instead.
    app.state.archives = Archives(Path(path))
    app.state.cache_seconds = cache_seconds
    app.state.archive_name = name
    app.state.preserved = PreservedTracks()
    app.state.art = pages.ArtCache()
    app.state.charts = pages.ChartCache()
    app.state.damage = DamageLog(catalog)
    app.include_router(api.router)
    app.include_router(pages.router)
    subsonic.mount(app, Path(path), record_plays=record_plays,
                   cache_seconds=cache_seconds, open_access=open_subsonic)
    app.mount("/static", StaticFiles(directory=pages.HERE / "static"), name="static")

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def error(request: Request, status: int, message: str,
              headers: dict[str, str] | None = None) -> Response:
        message = public_message(message, request.app.state.archives.path)
        if is_api(request):
            response: Response = JSONResponse({"error": message, "status": status},
                                              status_code=status)
        else:
            response = pages.page(request, "error.html", status=status, message=message)
            response.status_code = status
        response.headers.update(headers or {})
        return response

    @app.exception_handler(MusicarkError)
    async def library_error(request: Request, exc: MusicarkError) -> Response:
        return error(request, STATUS.get(type(exc), 400), str(exc))

    @app.exception_handler(DamagedFile)
    async def damaged(request: Request, exc: DamagedFile) -> Response:
        await run_in_threadpool(request.app.state.damage.record, exc)
        return error(request, 409, f"{exc}; it is not served (recorded as a fixity event)",
                     {"Cache-Control": "no-store"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in exc.errors()[:5])
        return error(request, 422, f"invalid request: {problems}"[:500])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such page"
        headers = dict(exc.headers or {})
        if "GET" in headers.get("Allow", "").split(", "):
            headers["Allow"] += ", HEAD"  # the middleware answers HEAD wherever GET is
        return error(request, exc.status_code, message, headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return error(request, 500, "internal error (logged on the server)")

    return app


def from_environment() -> FastAPI:
    """App factory for multi-process serving (`musicark serve --workers N`): each worker
    process builds its own app for the archive named in $MUSICARK_SERVE_ARCHIVE."""
    return create_app(os.environ[SERVE_ENV],
                      record_plays=os.environ.get(RECORD_PLAYS_ENV) == "1",
                      cache_seconds=float(os.environ.get(CACHE_ENV) or TTL),
                      open_subsonic=os.environ.get(OPEN_SUBSONIC_ENV) == "1")
