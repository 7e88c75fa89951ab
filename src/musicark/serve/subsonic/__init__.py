"""The Subsonic REST API (1.16.1 + OpenSubsonic extensions) under /rest/, so the music apps
people already use (DSub, Symfonium, Feishin, Supersonic...) can browse and play an archive.

`mount(app, archive_path)` adds it to the web app; `users` holds the accounts and imports no
web framework, so the CLI can manage them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def mount(app: FastAPI, archive_path: Path, *, record_plays: bool = False) -> None:
    """Serve the Subsonic API of the archive at `archive_path` under /rest/ in `app`."""
    from musicark.serve.subsonic.call import SubsonicState
    from musicark.serve.subsonic.router import router

    app.state.subsonic = SubsonicState(archive_path, record_plays=record_plays)
    app.include_router(router)
