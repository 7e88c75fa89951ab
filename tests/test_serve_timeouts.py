"""Slow and oversized requests against a real `musicark serve` on 127.0.0.1, spoken to
through raw sockets: half a request line, headers a byte at a time, a body slower than its
Content-Length promised, an idle connection, a huge head, a huge body."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musicark.archive import Archive

TIMEOUT = 1.0


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("slow") / "archive"
    Archive.create(path, name="slow").close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    log = open(path.parent / "serve.log", "wb")  # noqa: SIM115 - closed after the server
    process = subprocess.Popen(
        [sys.executable, "-m", "musicark", "serve", str(path), "--port", str(port),
         "--workers", str(request.param), "--request-timeout", str(TIMEOUT)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, (path.parent / "serve.log").read_text()
        assert time.monotonic() < deadline, "server did not start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if probe.recv(12).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            time.sleep(0.2)
    yield port
    process.terminate()
    process.wait(20)
    log.close()


def _closed_after(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Reads until the server closes the connection; how long that took and what it said."""
    started, received = time.monotonic(), b""
    sock.settimeout(limit)
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the connection was still open after {limit} s: {received[:200]!r}")
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return time.monotonic() - started, received


def test_half_a_request_line_is_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HT")
        took, said = _closed_after(sock, TIMEOUT + 3)
    assert took >= TIMEOUT * 0.8 and said.startswith(b"HTTP/1.1 408"), (took, said)


def test_headers_a_byte_at_a_time_are_cut_off(server: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        try:
            for _ in range(40):  # 6 s of headers if nobody stopped it
                sock.sendall(b"X: y\r\n")
                time.sleep(0.15)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _closed_after(sock, TIMEOUT + 3)
    assert time.monotonic() - started < TIMEOUT + 3


def test_a_body_slower_than_promised_is_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /api/v1/lookup HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ids\"")
        took, said = _closed_after(sock, TIMEOUT + 3)
    assert said.startswith(b"HTTP/1.1 408"), said


def test_an_idle_connection_and_a_stalled_second_request_are_closed(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        took, said = _closed_after(sock, TIMEOUT + 3)  # connects and says nothing
    assert said == b""
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET / HTTP/1.1\r\nHo")  # keep-alive, then half a request
        took, said = _closed_after(sock, TIMEOUT + 3)
    assert took < TIMEOUT + 1 and said.startswith(b"HTTP/1.1 408"), (took, said)


def test_a_normal_request_is_answered_with_the_security_headers(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /static HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        _, said = _closed_after(sock, 10)
    head = said.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 307") and b"\r\nlocation: /static/\r\n" in head
    assert b"content-security-policy: default-src 'self'" in head and b"evil" not in head


def test_a_huge_head_or_body_is_refused(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 200_000)
        _, said = _closed_after(sock, TIMEOUT + 3)
    assert said.startswith(b"HTTP/1.1 431"), said[:100]
    body = b'{"ids": ["' + b"x" * 3_000_000 + b'"]}'
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /api/v1/lookup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)
        _, said = _closed_after(sock, TIMEOUT + 3)
    assert said.startswith(b"HTTP/1.1 413"), said[:200]


def test_head_on_a_real_server_sends_the_headers_only(server: int) -> None:
    """uvicorn sees HEAD (the middleware hands the app a GET copy of the scope): it sends no
    body, and the next request on the same connection is read correctly."""
    from musicark.serve.pages import HERE

    size = (HERE / "static" / "favicon.ico").stat().st_size
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"HEAD /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _, said = _closed_after(sock, 10)
    head, rest = said.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and f"content-length: {size}".encode() in head
    assert rest.startswith(b"HTTP/1.1 200")  # no body between the two answers
    assert rest.split(b"\r\n\r\n", 1)[1] == (HERE / "static" / "favicon.ico").read_bytes()
