"""One Subsonic API call (its merged parameters, caller and archive) and the per-app state
it reads: kept apart from the router so the method modules can name `Call` without
importing the router that imports them."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from musicark.archive import Archive
from musicark.serve.cache import TTL, Recent
from musicark.serve.subsonic.auth import Logins
from musicark.serve.subsonic.library import Library, Snapshot
from musicark.serve.subsonic.responses import GENERIC, MISSING, SubsonicError


class SubsonicState:
    """Per app: the logins, the library snapshot and where plays are logged."""

    def __init__(self, archive_path: Path, *, record_plays: bool = False,
                 cache_seconds: float = TTL, open_access: bool = False) -> None:
        self.archive_path = Path(archive_path)
        # Recent answers of searches and album lists (router.py): same catalog, same snapshot.
        self.recent = Recent(cache_seconds)
        self.logins = Logins(self.archive_path, open_access=open_access)
        # Built on first use, or in the background when the server starts (the app's
        # lifespan): not here, where the parent of `serve --workers N` would build one too.
        self.library = Library(self.archive_path / "catalog.sqlite")
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
