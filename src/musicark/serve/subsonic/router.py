"""/rest/{method}[.view]: one endpoint for GET and form POST, dispatched to the handlers of
browsing, search and media. Every failure is a Subsonic error (HTTP 200), never a 5xx."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from musicark.archive import Archive
from musicark.errors import MusicarkError
from musicark.serve.subsonic import browsing, media, search
from musicark.serve.subsonic.auth import Accounts, authenticate
from musicark.serve.subsonic.library import Library, Snapshot
from musicark.serve.subsonic.responses import (
    GENERIC,
    MISSING,
    SubsonicError,
    render,
    render_error,
)

log = logging.getLogger("musicark.serve.subsonic")
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 1 << 16


class SubsonicState:
    """Per app: the accounts, the library snapshot and where plays are logged."""

    def __init__(self, archive_path: Path, *, record_plays: bool = False) -> None:
        self.archive_path = Path(archive_path)
        self.accounts = Accounts(self.archive_path)
        self.library = Library(self.archive_path / "catalog.sqlite")
        self.library.warm()
        self.plays_log = self.archive_path / "plays.jsonl" if record_plays else None


class Call:
    """One API call: its parameters (query and form merged), the caller and the archive."""

    def __init__(self, request: Request, params: list[tuple[str, str]], fmt: str) -> None:
        self.request = request
        self.params = params
        self.fmt = fmt
        self.state: SubsonicState = request.app.state.subsonic
        self.user = ""
        self._archive: Archive | None = None

    @property
    def archive(self) -> Archive:
        if self._archive is None:  # the calling thread's own read-only connection
            self._archive = self.request.app.state.archives.get()
        return self._archive

    @property
    def snap(self) -> Snapshot:
        return self.state.library.get()

    def get(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.params if k == name]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise SubsonicError(MISSING, f"required parameter is missing: {name}")
        return value

    def int(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise SubsonicError(GENERIC, f"{name} must be an integer") from None
        return max(low, min(high, number))

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        return default if value is None else value.strip().lower() in ("true", "1", "yes")


Handler = Callable[[Call], dict[str, Any] | Response]
METHODS: dict[str, Handler] = {**browsing.METHODS, **search.METHODS, **media.METHODS}
PUBLIC = {"getOpenSubsonicExtensions"}  # OpenSubsonic: answered without authentication


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
            call.user = authenticate(call.get, call.state.accounts.all())
        handler = METHODS.get(name)
        if handler is None:
            raise SubsonicError(GENERIC, f"unknown or unsupported method: {name[:80]!r}")
        result = await run_in_threadpool(handler, call)
    except SubsonicError as exc:
        return render_error(exc, fmt)
    except MusicarkError as exc:
        return render_error(SubsonicError(GENERIC, str(exc)), fmt)
    except Exception:
        log.exception("internal error in Subsonic %s", name)
        return render_error(SubsonicError(GENERIC, "internal error (logged on the server)"),
                            fmt)
    if isinstance(result, Response):
        return result
    return render(result, fmt)
