"""Recent answers to identical searches and lookups, kept while the catalog is unchanged.

A search costs a few milliseconds of SQLite and scoring; the framework around it well under
one. Under load the same queries recur (popular names, the letters of search-as-you-type),
so each server process keeps the whole responses of its recent searches and lookups:

- keyed on the request's raw path and query string (nothing else shapes these responses:
  no cookies, no content negotiation, no absolute URLs);
- valid while the catalog's `PRAGMA data_version` is unchanged (any commit by another
  connection, such as a `catalog import` while serving, changes it, and the whole cache is
  dropped) and for at most `ttl` seconds (what is not in the catalog: a store file found
  damaged later is still refused, and recorded, when it is played);
- only 200 answers with no `Cache-Control: no-store`, up to MAX_ENTRY bytes each and
  `max_bytes` in all, least recently used first out.

A pure ASGI layer, inside the security headers (every answer, cached or not, gets them) and
outside the routing, so a repeated request costs a dictionary look-up and one PRAGMA.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from musicark.serve.deps import Archives
from musicark.serve.middleware import ASGIApp, Message, Scope

CACHED_PATHS = ("/api/v1/search", "/api/v1/lookup", "/search")
TTL = 60.0
MAX_BYTES = 32 * 1024 * 1024
MAX_ENTRY = 1024 * 1024
CACHE_HEADER = b"x-musicark-cache"  # hit or miss: how a response was made, for benchmarks
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class ResponseCache:
    """The ASGI layer described in the module docstring."""

    def __init__(self, app: ASGIApp, archives: Archives, *, ttl: float = TTL,
                 max_bytes: int = MAX_BYTES, paths: Iterable[str] = CACHED_PATHS) -> None:
        self.app = app
        self.archives = archives
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.paths = frozenset(paths)
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, Message, bytes]] = \
            OrderedDict()
        self._bytes = 0
        self._version: int | None = None
        self.hits = self.misses = 0

    def _cacheable(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            return False
        # A GET with a body is unusual enough to be served afresh.
        return not any(name in _BODY_HEADERS for name, _ in scope.get("headers", ()))

    def _current(self) -> None:
        """Drops every entry when the catalog changed since they were made."""
        version = self.archives.get().conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._entries.clear()
            self._bytes = 0
            self._version = version

    def _store(self, key: tuple[str, bytes], start: Message, body: bytes) -> None:
        size = len(body) + len(key[1]) + 200
        if size > MAX_ENTRY or size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old[2]) + len(key[1]) + 200
        while self._entries and self._bytes + size > self.max_bytes:
            gone_key, (_, _, gone) = self._entries.popitem(last=False)
            self._bytes -= len(gone) + len(gone_key[1]) + 200
        self._entries[key] = (time.monotonic() + self.ttl, start, body)
        self._bytes += size

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if self.ttl <= 0 or not self._cacheable(scope):
            await self.app(scope, receive, send)
            return
        self._current()
        key = (scope["path"], scope.get("query_string", b""))
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            self._entries.move_to_end(key)
            self.hits += 1
            start = entry[1]
            await send({**start, "headers": [*start["headers"], (CACHE_HEADER, b"hit")]})
            await send({"type": "http.response.body", "body": entry[2]})
            return
        self.misses += 1
        version = self._version
        start: Message | None = None
        chunks: list[bytes] = []
        keep = True

        async def capture(message: Message) -> None:
            nonlocal start, keep
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                keep = message["status"] == 200 and not any(
                    name.lower() == b"cache-control" and b"no-store" in value.lower()
                    for name, value in headers)
                start = {"type": message["type"], "status": message["status"],
                         "headers": headers}
                message = {**message, "headers": [*headers, (CACHE_HEADER, b"miss")]}
            elif message["type"] == "http.response.body" and keep:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and start is not None \
                        and self._version == version:
                    self._store(key, start, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits,
                "misses": self.misses}
