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
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from musicark.serve.deps import Archives
from musicark.serve.middleware import ASGIApp, Message, Scope

CACHED_PATHS = ("/api/v1/search", "/api/v1/lookup", "/search")
TTL = 60.0
MAX_BYTES = 32 * 1024 * 1024
MAX_ENTRY = 1024 * 1024
CACHE_HEADER = b"x-musicark-cache"  # hit or miss: how a response was made, for benchmarks
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class Recent:
    """Least recently used entries with a lifetime and a byte budget, all dropped at once
    when the version they were made under (the catalog's data_version...) changes."""

    def __init__(self, ttl: float = TTL, max_bytes: int = MAX_BYTES) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[float, Any, int]] = OrderedDict()
        self._bytes = 0
        self.version: Hashable = None
        self.hits = self.misses = 0
        self.clock: Callable[[], float] = time.monotonic  # tests set their own

    def at(self, version: Hashable) -> None:
        """Drops every entry made under another version."""
        if version != self.version:
            self._entries.clear()
            self._bytes = 0
            self.version = version

    def get(self, key: Hashable) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        size += 200  # the entry's own keeping, roughly
        if size > MAX_ENTRY or size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[2]
        while self._entries and self._bytes + size > self.max_bytes:
            self._bytes -= self._entries.popitem(last=False)[1][2]
        self._entries[key] = (self.clock() + self.ttl, value, size)
        self._bytes += size

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._entries), "bytes": self._bytes, "hits": self.hits,
                "misses": self.misses}


def catalog_version(archives: Archives) -> int:
    """The catalog's data_version as the event loop thread's connection sees it (a value is
    only comparable with others from the same connection: call this on the event loop)."""
    return archives.get().conn.execute("PRAGMA data_version").fetchone()[0]


class ResponseCache:
    """The ASGI layer described in the module docstring."""

    def __init__(self, app: ASGIApp, archives: Archives, *, ttl: float = TTL,
                 max_bytes: int = MAX_BYTES, paths: Iterable[str] = CACHED_PATHS) -> None:
        self.app = app
        self.archives = archives
        self.ttl = ttl
        self.recent = Recent(ttl, max_bytes)
        self.paths = frozenset(paths)

    def _cacheable(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            return False
        # A GET with a body is unusual enough to be served afresh.
        return not any(name in _BODY_HEADERS for name, _ in scope.get("headers", ()))

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if self.ttl <= 0 or not self._cacheable(scope):
            await self.app(scope, receive, send)
            return
        recent = self.recent
        recent.at(catalog_version(self.archives))
        key = (scope["path"], scope.get("query_string", b""))
        entry = recent.get(key)
        if entry is not None:
            start, body = entry
            await send({**start, "headers": [*start["headers"], (CACHE_HEADER, b"hit")]})
            await send({"type": "http.response.body", "body": body})
            return
        version = recent.version
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
                        and recent.version == version:
                    body = b"".join(chunks)
                    recent.put(key, (start, body), len(body) + len(key[1]))
            await send(message)

        await self.app(scope, receive, capture)

    def stats(self) -> dict[str, Any]:
        return self.recent.stats()
