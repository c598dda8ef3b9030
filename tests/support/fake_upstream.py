"""A scriptable fake upstream: a real aiohttp server on a loopback port.

Tests enqueue replies (`json_reply`, `sse_reply`, `hang`, ...); each incoming request takes
the next one, or the server's default answer when the queue is empty. Every request is
recorded (path, headers, JSON body) so tests can assert what really reached the upstream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # case-insensitive, like HTTP
    body: Any


@dataclass
class Pause:
    seconds: float


@dataclass
class Reset:
    """Abort the connection mid-stream."""


@dataclass
class Raw:
    data: bytes


@dataclass
class StreamLog:
    """What happened to one streamed reply: how far it got, and whether the peer left."""

    sent: int = 0
    peer_gone_at: float | None = None
    finished: bool = False
    events: list[str] = field(default_factory=list)


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp app on 127.0.0.1, on a port the OS picks; the runner and port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    return runner, int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]


class FakeUpstream:
    def __init__(self, default: Reply) -> None:
        self.queue: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.streams: list[StreamLog] = []
        self._default = default
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer_by_default(self, reply: Reply) -> None:
        """Every request without an enqueued reply gets this one."""
        self._default = reply

    def enqueue(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    async def start(self) -> FakeUpstream:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                body,
            )
        )
        reply = self.queue.popleft() if self.queue else self._default
        return await reply(request)


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    async def reply(request: web.Request) -> web.StreamResponse:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return web.Response(
            body=data, status=status, headers=headers, content_type="application/json"
        )

    return reply


def sse_reply(
    upstream: FakeUpstream,
    events: Iterable[bytes | dict[str, Any] | Pause | Reset | Raw | tuple[str, dict[str, Any]]],
    status: int = 200,
) -> Reply:
    """Stream `events` as SSE: dicts as `data:` JSON, (name, dict) with an `event:` line."""
    items = list(events)

    async def reply(request: web.Request) -> web.StreamResponse:
        log = StreamLog()
        upstream.streams.append(log)
        response = web.StreamResponse(status=status)
        response.content_type = "text/event-stream"
        await response.prepare(request)
        try:
            for item in items:
                if isinstance(item, Pause):
                    await asyncio.sleep(item.seconds)
                    continue
                if isinstance(item, Reset):
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                await response.write(_encode(item))
                log.sent += 1
            await response.write_eof()
            log.finished = True
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            log.peer_gone_at = asyncio.get_running_loop().time()
            raise
        return response

    return reply


def _encode(item: bytes | dict[str, Any] | Raw | tuple[str, dict[str, Any]]) -> bytes:
    if isinstance(item, Raw):
        return item.data
    if isinstance(item, bytes):
        return b"data: " + item + b"\n\n"
    if isinstance(item, tuple):
        name, data = item
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
    return b"data: " + orjson.dumps(item) + b"\n\n"


def hang(seconds: float = 3600) -> Reply:
    """Accept the request and send nothing (until the peer goes away)."""

    async def reply(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=504)

    return reply


def reset() -> Reply:
    """Close the connection without answering."""

    async def reply(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=500)

    return reply
