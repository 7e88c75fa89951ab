"""The socket `musicark serve` listens on, bound before uvicorn starts.

Binding here rather than in uvicorn means `--port 0` works: the kernel picks a free port and
the line `serve` prints names the port actually bound (scripts and tests read it there, with
no race against another process taking a port probed a moment before). The socket is
listening as soon as this returns, so a client may connect at once: its connection waits in
the backlog until the server accepts it. A port already taken is one clear error.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from musicark.errors import BadConfig


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (0: any free port), inheritable by the
    worker processes of `--workers N`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named (socket.create_server leaves 0): asyncio sets TCP_NODELAY on the
    # connections accepted only from a socket that says it is TCP.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = os.strerror(exc.errno) if (exc.errno or 0) > 0 else (exc.strerror or str(exc))
        raise BadConfig(f"cannot listen on {host} port {port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port the kernel gave `sock` (the one asked for, unless that was 0)."""
    return int(sock.getsockname()[1])


def run(app: Any, sock: socket.socket, **options: Any) -> None:
    """`uvicorn.run(app, **options)` on `sock` rather than on a socket uvicorn binds (its
    `fd=` option would label the socket AF_UNIX, and asyncio then leaves Nagle on: see
    `listen`)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, **options)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops, as under uvicorn.run
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
