"""uvicorn's HTTP protocol with a deadline on reading requests (slow-request defence).

uvicorn closes idle keep-alive connections, but a client that sends half a request line, or
headers one byte at a time, or a body slower than it promised, holds its connection (and a
slot of the server) for as long as it likes. Here each request's head must be complete
within `request_timeout` seconds of the connection opening (or of the previous response
ending), and its body within `request_timeout` seconds of its head; otherwise the server
answers 408 and closes. Responses are not limited: a slow listener streaming a long file is
not a slow request. A request head (request line and headers) larger than `MAX_HEAD` bytes
is refused with 431 (httptools sets no limit of its own).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

try:  # the protocol uvicorn itself prefers ("auto"), else its pure-Python one
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

REQUEST_TIMEOUT = 10.0
TIMEOUT_ENV = "MUSICARK_SERVE_REQUEST_TIMEOUT"
MAX_HEAD = 64 * 1024


def _refusal(status: bytes, message: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n"
            b"x-content-type-options: nosniff\r\n\r\n" + message)


TIMED_OUT = _refusal(b"408 Request Timeout", b"the request came too slowly")
HEAD_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large",
                          b"the request line and headers are too large")


class TimedProtocol(_Base):
    """HTTP/1.1 with a per-request reading deadline (see the module docstring)."""

    request_timeout = float(os.environ.get(TIMEOUT_ENV) or REQUEST_TIMEOUT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._partial = False  # bytes of an unfinished request arrived
        self._head_bytes = 0  # bytes received towards the head not yet complete

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _waiting_for_client(self) -> bool:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True  # no request in progress: waiting for the next head
        return bool(cycle.more_body) and not cycle.response_started  # mid-body

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or not self._waiting_for_client():
            return
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if self._partial and not answering:
            self.transport.write(TIMED_OUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        self._partial = True
        super().data_received(data)
        if self.cycle is not before:  # a head is complete: now the body has its deadline
            self._partial = bool(self.cycle and self.cycle.more_body)
            self._head_bytes = 0
            self._arm()
        elif not (self.cycle and self.cycle.more_body and not self.cycle.response_complete):
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD and not self.transport.is_closing():
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._partial = False
        if not self.transport.is_closing():
            self._arm()  # the next request's head (the keep-alive timeout may close first)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


def timed_protocol(seconds: float) -> type[TimedProtocol]:
    """TimedProtocol with its own deadline, for servers run in this process."""
    return type("TimedProtocol", (TimedProtocol,), {"request_timeout": float(seconds)})
