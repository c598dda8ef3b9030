"""The HTTP/1.1 connection protocol: uvicorn's httptools protocol, with a public
listener's limits.

uvicorn bounds neither the size of a request's headers nor the time a client may take to
send them, and a connection that never sends a byte is never closed: 30 connections
trickling 20 MB of headers each held 748 MB, and 1,100 idle sockets exhausted the file
limit. Here every connection has
- a cap on the bytes received before its headers are complete (431, then closed);
- a deadline from its first byte (or from connecting) to complete headers (408);
- a cap on open connections: one over it is answered 503 at once and closed.
Each refusal is OpenAI's error envelope, so clients see a reason, not a reset.

Three savings per request, since every proxied request crosses this class:
- a response's head waits for its body's first write (or the end of the loop's turn),
  so a plain answer leaves in one system call and one packet, not two;
- a request learns that its client left from a callback (`DISCONNECT_HOOKS` in its
  scope), not from a task parked in `receive()` for its whole life;
- a request whose body has already arrived says so (`BODY_ARRIVED`), so reading it
  arms no deadline.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from proxy.asgi import BODY_ARRIVED, DISCONNECT_HOOKS, DisconnectHooks

LINGER_S = 1.0
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Busy"}


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    max_connections: int = 4096


def bounded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's protocol class with these limits (uvicorn builds one per connection)."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_headers = True
            self._header_bytes = 0
            self._header_timer: asyncio.TimerHandle | None = None
            self._refused = False
            self._disconnect_hooks = DisconnectHooks()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                self._refuse(
                    503,
                    "the gateway has too many open connections; retry shortly",
                    "too_many_connections",
                    b"retry-after: 1\r\n",
                )
                return
            self._arm_header_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._header_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # lingering after a refusal: read and drop
            super().data_received(data)
            # Counted after parsing: a chunk that completes the headers may carry body
            # bytes too, and those are not header bytes.
            if self._in_headers and not self._refused and not self.transport.is_closing():
                # Armed only now: headers that arrive whole (nearly all) need no timer.
                if self._header_timer is None:
                    self._arm_header_timer()
                self._header_bytes += len(data)
                if self._header_bytes > limits.max_header_bytes:
                    self._refuse(
                        431,
                        f"the request headers are larger than {limits.max_header_bytes} bytes "
                        "(server.max_header_kb)",
                        "request_headers_too_large",
                    )

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm_header_timer()
            self.scope[DISCONNECT_HOOKS] = self._disconnect_hooks  # type: ignore[literal-required]
            super().on_headers_complete()
            # A HEAD answer has no body write to ride on: its head goes out at once (held,
            # a graceful shutdown in the same turn could close the connection under it).
            if self.cycle is not None and self.scope["method"] != "HEAD":
                self.cycle.transport = HeadHeldBack(self.cycle, self.transport, self.loop)  # type: ignore[assignment]

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.scope[BODY_ARRIVED] = True  # type: ignore[literal-required]

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)
            self._disconnect_hooks.call_all()

        def _arm_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(limits.header_timeout_s, self._too_slow)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self._in_headers and not self._refused:
                self._refuse(
                    408,
                    f"the request headers did not arrive within {limits.header_timeout_s:g}s "
                    "(server.header_timeout_s)",
                    "request_timeout",
                )

        def _refuse(self, status: int, message: str, code: str, extra: bytes = b"") -> None:
            self._disarm_header_timer()
            error = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error" if status < 500 else "api_error",
                    "param": None,
                    "code": code,
                }
            }
            body = orjson.dumps(error)
            head = (
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n" % (status, REASONS[status], len(body))
            )
            self.transport.write(head + extra + b"\r\n" + body)
            # A lingering close: closing at once with the client still sending would make
            # the kernel reset the connection, and the client would lose the answer. So
            # the answer is sent with a FIN, and what still arrives is read and dropped
            # for a moment before the connection is closed.
            self._refused = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.transport.resume_reading()  # in case flow control had paused it
            self.loop.call_later(LINGER_S, self.transport.close)

    return BoundedHttpToolsProtocol


class HeadHeldBack:
    """The transport as one response's cycle sees it until its head has left: the head
    waits for the next write, the body's first, and leaves with it in one `writev`. At the
    end of the loop's turn it leaves alone, so a stream's head (or a 100 Continue) is never
    held back for longer than that. Either way the cycle then gets its transport back."""

    __slots__ = ("_cycle", "_head", "_loop", "_release", "_transport")

    def __init__(
        self,
        cycle: RequestResponseCycle,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._cycle = cycle
        self._transport = transport
        self._loop = loop
        self._head = b""
        self._release: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._release is None:
            self._head = data
            self._release = self._loop.call_soon(self.release)
            return
        self._release.cancel()
        self._cycle.transport = self._transport
        self._transport.writelines((self._head, data))

    def release(self) -> None:
        self._cycle.transport = self._transport
        if self._head and not self._transport.is_closing():
            self._transport.write(self._head)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        if self._release is not None:
            self._release.cancel()
            self.release()
        self._transport.close()
