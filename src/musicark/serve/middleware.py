"""What every response passes through: security headers, redirects that stay on the site,
and HEAD answered wherever GET is.

A pure ASGI middleware (no per-request Request objects) so pages, the API, static files,
audio, art, torrents and error pages all get the same treatment at almost no cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.responses import FileResponse, RangeNotSatisfiable

from musicark.serve.ranges import Unsatisfiable, byte_ranges

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

# Everything a page uses comes from the archive's own origin: scripts and styles only from
# /static files (no inline script, style or event handler), nothing from other hosts, no
# plugins, no framing, forms only to the archive itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # What a listener reads is nobody else's business: links carry no Referer.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HEAD_KEY = "musicark.head"  # set in the scope of a HEAD request answered as GET
_RAW = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]
_NAMES = {k for k, _ in _RAW}


def local_location(location: str) -> str:
    """A redirect target reduced to its path and query. The app only ever redirects to
    itself, and Starlette builds absolute targets from the request's Host header: keeping
    that host would let whoever sets the header choose where a redirect goes. Leading
    slashes and backslashes collapse to one slash, so the result is never `//host`."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, ""))


def secure_headers(raw: list[tuple[bytes, bytes]], status: int) -> list[tuple[bytes, bytes]]:
    """Response headers with the security headers set (replacing any of the same name) and
    a same-site Location on redirects."""
    out = [(k, v) for k, v in raw if k.lower() not in _NAMES]
    if 300 <= status < 400:
        out = [(k, local_location(v.decode("latin-1")).encode("latin-1"))
               if k.lower() == b"location" else (k, v) for k, v in out]
    return out + _RAW


class SecureResponses:
    """Adds the security headers to every response, keeps redirects on the site, and answers
    HEAD as GET without the body (RFC 9110 9.3.2) on every route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            # A copy: the server keeps its own scope, where the method is still HEAD.
            scope = {**scope, "method": "GET", HEAD_KEY: True}

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secure_headers(
                    list(message.get("headers", [])), message["status"])}
            elif head and message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_secure)


class StoreFileResponse(FileResponse):
    """A FileResponse that answers a HEAD (routed as GET) from the file's metadata instead
    of reading the whole file for a body that is thrown away, and reads `Range` as RFC 9110
    says (serve/ranges.py): an unknown unit or an invalid range is ignored (200, the whole
    file), 416 only when no range of the set is satisfiable."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return byte_ranges(http_range, file_size) or []  # []: Starlette sends it all
        except Unsatisfiable:
            raise RangeNotSatisfiable(file_size) from None

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope.get(HEAD_KEY):
            scope = {**scope, "method": "HEAD"}
        await super().__call__(scope, receive, send)
