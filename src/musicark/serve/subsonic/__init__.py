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


def mount(app: FastAPI, archive_path: Path, *, record_plays: bool = False,
          cache_seconds: float = 60.0, open_access: bool = False) -> None:
    """Serve the Subsonic API of the archive at `archive_path` under /rest/ in `app`
    (`cache_seconds`: how long a repeated search or album list may be answered from memory
    while the catalog and the library snapshot are unchanged; 0: never; `open_access`:
    with no account, callers from a loopback address are let in without a login)."""
    from musicark.serve.subsonic.call import SubsonicState
    from musicark.serve.subsonic.router import router

    app.state.subsonic = SubsonicState(archive_path, record_plays=record_plays,
                                       cache_seconds=cache_seconds, open_access=open_access)
    app.include_router(router)
