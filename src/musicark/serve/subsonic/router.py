"""/rest/{method}[.view]: one endpoint for GET and form POST, dispatched to the handlers of
browsing, search and media. Every failure is a Subsonic error (HTTP 200), never a 5xx."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from musicark.errors import MusicarkError
from musicark.serve.cache import CACHE_HEADER, catalog_version
from musicark.serve.subsonic import browsing, media, search
from musicark.serve.subsonic.call import Call
from musicark.serve.subsonic.responses import (
    GENERIC,
    SubsonicError,
    render,
    render_error,
)
from musicark.serve.text import public_message

log = logging.getLogger("musicark.serve.subsonic")
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 1 << 16


Handler = Callable[[Call], dict[str, Any] | Response]
METHODS: dict[str, Handler] = {**browsing.METHODS, **search.METHODS, **media.METHODS}
PUBLIC = {"getOpenSubsonicExtensions"}  # OpenSubsonic: answered without authentication
CACHED = {"search2", "search3", "getAlbumList", "getAlbumList2"}
UNCACHED_LISTS = {"random", "recent"}  # drawn afresh; from the plays log, not the catalog
CREDENTIALS = {"u", "p", "t", "s", "apiKey", "c", "v"}
HIT, MISS = ({CACHE_HEADER.decode(): state} for state in ("hit", "miss"))


def _format(params: list[tuple[str, str]]) -> str:
    for key, value in params:
        if key == "f":
            return "json" if value == "json" else "xml"
    return "xml"


@router.api_route("/rest/{method}", methods=["GET", "POST"])
async def rest(request: Request, method: str) -> Response:
    params = list(request.query_params.multi_items())
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return render_error(SubsonicError(GENERIC, "form too large"), _format(params))
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    fmt = _format(params)
    name = method.removesuffix(".view")
    call = Call(request, params, fmt)
    try:
        if name not in PUBLIC:
            call.user = call.state.logins.check(
                call.get, request.client.host if request.client else None)
        handler = METHODS.get(name)
        if handler is None:
            raise SubsonicError(GENERIC, f"unknown or unsupported method: {name[:80]!r}")
        key = _cache_key(request, call, name)
        version_seen = call.state.recent.version
        if key is not None:
            found = call.state.recent.get(key)
            if found is not None:
                return Response(found[1], media_type=found[0], headers=HIT)
        result = await run_in_threadpool(handler, call)
    except SubsonicError as exc:
        return render_error(exc, fmt)
    except MusicarkError as exc:  # never a server path in what a client reads
        message = public_message(str(exc), call.state.archive_path)
        return render_error(SubsonicError(GENERIC, message), fmt)
    except Exception:
        log.exception("internal error in Subsonic %s", name)
        return render_error(SubsonicError(GENERIC, "internal error (logged on the server)"),
                            fmt)
    if isinstance(result, Response):
        return result
    response = render(result, fmt)
    if key is not None and call.state.recent.version == version_seen:
        call.state.recent.put(key, (response.media_type, response.body), len(response.body))
        response.headers.update(MISS)
    return response


def _cache_key(request: Request, call: Call, name: str) -> tuple | None:
    """What a search or album list answer depends on besides the catalog and the snapshot:
    the method and its parameters without the caller's credentials and client name (token
    clients send a fresh salt with every request). None for what is not cached: other
    methods, random and recently played lists, and before the first snapshot."""
    recent = call.state.recent
    if recent.ttl <= 0 or name not in CACHED or call.get("type") in UNCACHED_LISTS:
        return None
    snapshot = call.state.library.current()
    if snapshot is None:
        return None
    recent.at((catalog_version(request.app.state.archives), id(snapshot)))
    return (name, tuple(sorted((k, v) for k, v in call.params if k not in CREDENTIALS)))
