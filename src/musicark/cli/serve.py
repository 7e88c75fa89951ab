"""`musicark serve`: the web UI and JSON API (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import ArchiveOpt, app, err, handle_errors, out, safe_line


@app.command()
@handle_errors
def serve(
    directory: Annotated[Path | None, typer.Argument(
        help="Archive directory, as --archive (kept for scripts that pass it first).",
        show_default=False)] = None,
    archive: ArchiveOpt = None,
    host: Annotated[str, typer.Option(
        help="Address to bind. Loopback by default; anything else exposes the archive.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        min=0, max=65535,
        help="TCP port; 0 takes any free port (the line printed at start names it).")
    ] = 8377,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Server processes (one per core serves the most requests).")] = 1,
    request_timeout: Annotated[float, typer.Option(
        min=0.5, max=3600,
        help="Seconds a client has to send a request's line and headers, and again its body; "
             "slower requests get 408 and are closed.")] = 10.0,
    cache_seconds: Annotated[float, typer.Option(
        min=0, max=86400,
        help="Seconds an identical search or lookup may be answered from memory while the "
             "catalog is unchanged (any catalog change drops the cache); 0 turns it off.")
    ] = 60.0,
    record_plays: Annotated[bool, typer.Option(
        help="Append Subsonic scrobbles to ARCHIVE/plays.jsonl (never to the catalog).")
    ] = False,
    open_subsonic: Annotated[bool, typer.Option(
        "--open-subsonic",
        help="While the archive has no Subsonic user, let apps on this machine use the "
             "Subsonic API without a login (loopback --host only). Without it and without "
             "a user, every Subsonic login is refused.")] = False,
) -> None:
    """Serve the web UI (search, browse, play, stats, radio, releases), the JSON API
    under /api/v1 (listed at /api; OpenAPI at /api/v1/openapi.json) and the Subsonic API
    under /rest/ for music apps (users: `musicark user add`). Read-only: no request can
    change the archive (a damaged store file it meets is refused with 409 and recorded as a
    fixity event; `--record-plays` appends scrobbles to a plays log, not the catalog).

    Example: musicark serve --archive ~/archive --port 8377
    """
    import os

    from musicark.errors import BadConfig
    from musicark.serve import create_app
    from musicark.serve.app import CACHE_ENV, OPEN_SUBSONIC_ENV, RECORD_PLAYS_ENV, SERVE_ENV
    from musicark.serve.listen import bound_port, listen, run
    from musicark.serve.loopback import is_loopback_host
    from musicark.serve.protocol import TIMEOUT_ENV, timed_protocol
    from musicark.serve.subsonic.users import Users

    # Read-write once: applies pending schema upgrades. A positional directory wins over
    # --archive and $MUSICARK_ARCHIVE (which Typer cannot tell apart).
    located = Archive.locate(directory or archive)
    located.close()
    loopback = is_loopback_host(host)  # 127.0.0.0/8, ::1, names resolving only to them
    users = Users(located.path).all()  # a broken users file stops here (BadConfig)
    if open_subsonic and not loopback:
        raise BadConfig(f"--open-subsonic is for loopback addresses only, not {host}: add "
                        "a user with `musicark user add NAME` instead")
    if not loopback and not users:
        raise BadConfig(f"refusing to serve the Subsonic API on {host} with no user: add one "
                        "with `musicark user add NAME` (or bind 127.0.0.1)")
    # Fails once, here, on a bad archive.
    web = create_app(located.path, record_plays=record_plays, cache_seconds=cache_seconds,
                     open_subsonic=open_subsonic)
    # Bound here, before any note, so the port printed is the one listening (`--port 0`:
    # any free one) and a taken port is the only line printed.
    sock = listen(host, port)
    if not users:
        err.print("note: no Subsonic user, so " + (
            "any app on this machine may use the Subsonic API without a login"
            if open_subsonic else "every Subsonic login is refused (musicark user add "
            "NAME, or --open-subsonic on loopback)"), highlight=False)
    if not loopback:
        err.print(f"[yellow]warning:[/yellow] binding {host}: anyone who can reach it can "
                  "read and stream the whole archive", highlight=False)
    shown = f"[{host}]" if ":" in host else host
    out.print(f"serving {safe_line(located.path)} at http://{shown}:{bound_port(sock)}/ "
              "(Ctrl-C stops)", highlight=False)
    if workers == 1:
        run(web, sock, log_level="warning", http=timed_protocol(request_timeout))
    else:
        # Worker processes import the app and the protocol afresh: settings go by environment.
        os.environ[SERVE_ENV] = str(located.path)
        os.environ[TIMEOUT_ENV] = str(request_timeout)
        os.environ[RECORD_PLAYS_ENV] = "1" if record_plays else "0"
        os.environ[CACHE_ENV] = str(cache_seconds)
        os.environ[OPEN_SUBSONIC_ENV] = "1" if open_subsonic else "0"
        run("musicark.serve.app:from_environment", sock, factory=True, workers=workers,
            log_level="warning", http="musicark.serve.protocol:TimedProtocol")
