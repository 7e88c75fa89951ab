"""Shared request plumbing: one read-only catalog connection per server thread, and the few
threads that run searches off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from fastapi import Path as PathParam
from fastapi import Request

from musicark.archive import Archive

ID_MAX = PathParam(ge=1, le=2**62, description="Catalog row id.")
SHA256_PATTERN = PathParam(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lower-case hex.")


class Archives:
    """SQLite connections are per thread: each server thread opens the archive read-only
    once and keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> Archive:
        archive = getattr(self._local, "archive", None)
        if archive is None:
            archive = self._local.archive = Archive.open(self.path, readonly=True)
        return archive


async def archive_dep(request: Request) -> Archive:
    """For `async def` endpoints: the event loop thread's connection."""
    return request.app.state.archives.get()


def thread_archive_dep(request: Request) -> Archive:
    """For plain `def` endpoints (run in the thread pool): that thread's own connection."""
    return request.app.state.archives.get()


async def shuffle_dep(request: Request):
    return request.app.state.preserved


SEARCH_THREADS = 2  # searches computed at once per process (each holds the GIL for scoring)
T = TypeVar("T")


async def off_loop(request: Request, work: Callable[..., T], *args: Any) -> T:
    """`work(archive, *args)` in one of SEARCH_THREADS threads, each with its own connection.

    A search costs milliseconds of SQLite and Python scoring. On the event loop it would hold
    up every other connection of the process, the ones answered from the cache
    (serve/cache.py) or by a sub-millisecond lookup included, and those are most requests.
    Few threads, not the pool's 40: more would only trade the GIL among themselves."""
    state = request.app.state
    limiter = getattr(state, "search_limiter", None)
    if limiter is None:  # made on the event loop that uses it
        limiter = state.search_limiter = anyio.CapacityLimiter(SEARCH_THREADS)
    archives = state.archives
    return await anyio.to_thread.run_sync(lambda: work(archives.get(), *args),
                                          limiter=limiter)
