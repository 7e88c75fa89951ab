"""Slow and oversized requests against a real `musicark serve` on 127.0.0.1, spoken to
through raw sockets: half a request line, headers a byte at a time, a body slower than its
Content-Length promised, an idle connection, a huge head, a huge body."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time

import pytest

from live_server import serve_process
from musicark.archive import Archive

TIMEOUT = 1.0
HANG = 60  # seconds: only a server that never closes a connection makes a test wait this long


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("slow") / "archive"
    Archive.create(path, name="slow").close()
    process, port = serve_process([str(path), "--workers", str(request.param),
                                   "--request-timeout", str(TIMEOUT)], path.parent / "serve.log")
    yield port
    process.terminate()
    process.wait(60)
    process.stdout.close()


def _closed_after(sock: socket.socket, started: float) -> tuple[float, bytes]:
    """Reads until the server closes the connection; seconds since `started` and what it
    said. Waits for the close however long it takes (HANG only stops a server that never
    closes): the deadline is checked from below, as the least time the client had."""
    received = b""
    sock.settimeout(HANG)
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the connection was still open after {HANG} s: {received[:200]!r}")
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return time.monotonic() - started, received


def _response(sock: socket.socket) -> bytes:
    """One whole response (head and its Content-Length of body) from a kept-alive socket."""
    sock.settimeout(HANG)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    assert len(body) == length, "more than one response"
    return head


def test_half_a_request_line_is_cut_off(server: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HT")
        took, said = _closed_after(sock, started)
    assert said.startswith(b"HTTP/1.1 408") and took >= TIMEOUT * 0.99, (took, said)


def test_headers_a_byte_at_a_time_are_cut_off(server: int) -> None:
    """Each header line comes in time, so only the deadline on the whole head can end a
    client that keeps adding lines: it gets its 408 while it is still sending."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        for _ in range(int(HANG / 0.1)):
            if select.select([sock], [], [], 0.1)[0]:  # the server spoke or closed
                break
            try:
                sock.sendall(b"X: y\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail(f"a client still sending headers was not cut off in {HANG} s")
        took, said = _closed_after(sock, started)
    assert said.startswith(b"HTTP/1.1 408") and took >= TIMEOUT * 0.99, (took, said)


def test_a_body_slower_than_promised_is_cut_off(server: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /api/v1/lookup HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ids\"")
        took, said = _closed_after(sock, started)
    assert said.startswith(b"HTTP/1.1 408") and took >= TIMEOUT * 0.99, (took, said)


def test_an_idle_connection_and_a_stalled_second_request_are_closed(server: int) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server)) as sock:
        took, said = _closed_after(sock, started)  # connects and says nothing
    assert said == b"" and took >= TIMEOUT * 0.99, (took, said)
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHo")  # keep-alive, then half a request
        took, said = _closed_after(sock, started)
    # uvicorn's keep-alive timer stops at the first byte of a request and closes without a
    # word: the 408 is the request deadline's.
    assert said.startswith(b"HTTP/1.1 408"), (took, said)


def test_a_normal_request_is_answered_with_the_security_headers(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /static HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        _, said = _closed_after(sock, time.monotonic())
    head = said.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 307") and b"\r\nlocation: /static/\r\n" in head
    assert b"content-security-policy: default-src 'self'" in head and b"evil" not in head


def test_a_huge_head_or_body_is_refused(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 200_000)
        _, said = _closed_after(sock, time.monotonic())
    assert said.startswith(b"HTTP/1.1 431"), said[:100]
    body = b'{"ids": ["' + b"x" * 3_000_000 + b'"]}'
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /api/v1/lookup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)
        _, said = _closed_after(sock, time.monotonic())
    assert said.startswith(b"HTTP/1.1 413"), said[:200]


def test_head_on_a_real_server_sends_the_headers_only(server: int) -> None:
    """uvicorn sees HEAD (the middleware hands the app a GET copy of the scope): it sends no
    body, and the next request on the same connection is read correctly."""
    from musicark.serve.pages import HERE

    size = (HERE / "static" / "favicon.ico").stat().st_size
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"HEAD /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _, said = _closed_after(sock, time.monotonic())
    head, rest = said.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and f"content-length: {size}".encode() in head
    assert rest.startswith(b"HTTP/1.1 200")  # no body between the two answers
    assert rest.split(b"\r\n\r\n", 1)[1] == (HERE / "static" / "favicon.ico").read_bytes()
