"""Small pure-ASGI building blocks for the hot path: body reading, responses, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from proxy.deadlines import Deadline
from proxy.errors import GatewayError, PayloadTooLarge, RequestTimeout

Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
EVENT_STREAM = (b"content-type", b"text/event-stream; charset=utf-8")
NO_CACHE = (b"cache-control", b"no-cache")
# Tells nginx and similar proxies not to buffer the stream.
NO_BUFFERING = (b"x-accel-buffering", b"no")
# Where the gateway's own HTTP protocol (`proxy.protocol`) puts, in each request's scope,
# the set of callbacks it calls when the client's connection is lost.
DISCONNECT_HOOKS = "gateway.disconnect_hooks"
# ... and marks a request whose whole body has arrived (reading it will not wait).
BODY_ARRIVED = "gateway.body_arrived"


class ClientDisconnected(Exception):
    """The client went away before the response was complete."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def request_id(scope: Scope) -> str:
    return str(scope["state"]["request_id"])


async def read_body(
    scope: Scope,
    receive: Receive,
    limit: int,
    timeout_s: float,
    setting: str = "server.max_request_body_mb",
) -> bytes:
    """The whole request body, refusing more than `limit` bytes before reading them, and a
    body that takes longer than `timeout_s` to arrive (a client trickling it byte by byte
    would otherwise hold its connection and buffer forever)."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit, setting)
    if scope.get(BODY_ARRIVED):  # nothing to wait for, so no deadline to arm
        return await _read_all(receive, limit, setting)
    try:
        with Deadline(asyncio.get_running_loop().time() + timeout_s):
            return await _read_all(receive, limit, setting)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {timeout_s:g}s (server.body_timeout_s)"
        ) from None


async def _read_all(receive: Receive, limit: int, setting: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise _too_large(limit, setting)
        chunks.append(body)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than the gateway's limit of {limit} bytes ({setting})"
    )


async def send_response(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, error: GatewayError, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send_response(send, error.status, error.body(), [*headers, *extra])


class DisconnectHooks(set[Callable[[], None]]):
    """A connection's callbacks for its client leaving. Once it has left, a request that
    starts watching only then (after a slow admission, say) is told at once."""

    lost = False

    def call_all(self) -> None:
        self.lost = True
        for hook in tuple(self):
            hook()
        self.clear()


class DisconnectWatcher:
    """Cancels the request's task the moment the client disconnects.

    uvicorn's `send` silently drops messages once the client is gone, so without this an
    abandoned request would keep its upstream call (and its cost) running to the end.
    Under the gateway's protocol the connection calls back; under any other server a task
    waits in `receive()`. Leave the block before the final body message: uvicorn reports
    a completed response as a disconnect too.
    """

    __slots__ = ("_hooks", "_receive", "_scope", "_task", "_watch", "disconnected")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._scope = scope
        self._receive = receive
        self._task: asyncio.Task[Any] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._hooks: DisconnectHooks | None = None
        self.disconnected = False

    async def __aenter__(self) -> DisconnectWatcher:
        self._task = asyncio.current_task()
        self._hooks = self._scope.get(DISCONNECT_HOOKS)
        if self._hooks is not None:
            if self._hooks.lost:
                self._client_left()  # raised at the block's first await
            else:
                self._hooks.add(self._client_left)
        else:
            self._watch = asyncio.get_running_loop().create_task(self._wait())
        return self

    async def _wait(self) -> None:
        message: Message = {"type": ""}
        while message["type"] != "http.disconnect":
            message = await self._receive()
        self._client_left()

    def _client_left(self) -> None:
        self.disconnected = True
        if self._task is not None:
            self._task.cancel()

    def stop(self) -> None:
        if self._hooks is not None:
            self._hooks.discard(self._client_left)
            self._hooks = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self.disconnected and self._task is not None:
            self._task.uncancel()
            if exc_type is asyncio.CancelledError:
                raise ClientDisconnected from None
