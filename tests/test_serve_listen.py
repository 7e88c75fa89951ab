"""`musicark serve --port 0` listens on a port the kernel picked and prints that port; a
port already taken is one clear line."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from typer.testing import CliRunner

from live_server import answered, serve_process
from musicark.archive import Archive
from musicark.cli import app
from musicark.serve.listen import bound_port, listen


def test_port_zero_serves_on_the_port_it_prints(tmp_path: Path) -> None:
    Archive.create(tmp_path / "a").close()
    process, port = serve_process([str(tmp_path / "a")], tmp_path / "serve.log")
    try:
        assert port > 0 and b"musicark" in answered(f"http://127.0.0.1:{port}/")
    finally:
        process.terminate()
        process.wait(60)
        process.stdout.close()


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    Archive.create(tmp_path / "a").close()
    with listen("127.0.0.1", 0) as taken:
        port = bound_port(taken)
        result = CliRunner().invoke(app, ["serve", str(tmp_path / "a"), "--port", str(port)])
    assert result.exit_code == 8, result.output
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1 port {port}: " \
                                    "Address already in use"


def test_the_socket_says_it_is_tcp_so_connections_get_no_delay() -> None:
    """asyncio sets TCP_NODELAY on accepted connections only when the listening socket's
    protocol is IPPROTO_TCP (socket.create_server leaves it 0): small answers would wait
    for delayed ACKs otherwise."""
    with listen("127.0.0.1", 0) as sock:
        assert (sock.family, sock.proto) == (socket.AF_INET, socket.IPPROTO_TCP)
        with socket.create_connection(sock.getsockname()):
            accepted, _ = sock.accept()
        with accepted:
            asyncio.base_events._set_nodelay(accepted)
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
