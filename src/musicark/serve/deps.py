"""Shared request plumbing: one read-only catalog connection per server thread."""

from __future__ import annotations

import threading
from pathlib import Path

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
