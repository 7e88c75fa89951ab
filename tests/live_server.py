"""Real servers for tests, on a port the kernel picked and nobody else can take.

The listening socket is bound (port 0) before the server starts, so a client may connect at
once: the connection waits in the backlog until the server accepts it. Readiness is one
answered request, not a poll of a flag or of a port.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import uvicorn

from musicark.serve.listen import bound_port, listen

ROOT = Path(__file__).resolve().parents[1]
STARTUP = 120  # seconds: only a server that never answers waits this long


def answered(url: str) -> bytes:
    """The body of one GET, waiting for the server however busy the machine is."""
    with urllib.request.urlopen(url, timeout=STARTUP) as page:
        assert page.status == 200, url
        return page.read()


class InProcess:
    """uvicorn serving `app` in a thread of this process."""

    def __init__(self, app, **config) -> None:
        self.sock = listen("127.0.0.1", 0)
        self.port = bound_port(self.sock)
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)
        self.thread.start()
        answered(self.url + "/favicon.ico")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def serve_process(args: list[str], log: Path, **popen) -> tuple[subprocess.Popen, int]:
    """`musicark serve ARGS --port 0` as a process whose stderr goes to `log`; the port is
    read from the line it prints once it listens."""
    env = dict(popen.pop("env", None) or os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with open(log, "wb") as errors:
        process = subprocess.Popen([sys.executable, "-m", "musicark", "serve", *args,
                                    "--port", "0"], env=env, stdout=subprocess.PIPE,
                                   stderr=errors, **popen)
    line = process.stdout.readline().decode()  # EOF (an empty line) if it died first
    found = re.search(r"at http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        process.kill()
        process.wait()
        raise AssertionError(f"serve did not start: {line!r} {log.read_text()}")
    port = int(found.group(1))
    answered(f"http://127.0.0.1:{port}/favicon.ico")
    return process, port
