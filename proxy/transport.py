"""The I/O seam between adapters and upstreams: send one request, read a body or SSE events.

`HTTPTransport` is the only code that touches aiohttp; its exceptions are translated here,
once, into `proxy.errors.UpstreamFailure`. Every wait is bounded: connect, first byte,
the gap between stream events, and the attempt's overall deadline (loop time). So is
every read: a plain body beyond `max_response_mb` or one SSE event beyond `max_event_mb`
is an `UpstreamTooLarge` (a fault of that route), never an unbounded buffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from proxy.config import ProviderConfig
from proxy.deadlines import Deadline
from proxy.errors import (
    UpstreamConnectError,
    UpstreamTimeout,
    UpstreamTooLarge,
)
from proxy.frozen import frozen
from proxy.sse import SSEEvent, SSEParser
from proxy.tracing import OUTBOUND

# Response headers are small; this bounds what aiohttp buffers while parsing them.
MAX_HEADER_LINE_BYTES = 64 * 1024

__all__ = ["HTTPTransport", "SSEEvent", "Transport", "UpstreamRequest", "UpstreamResponse"]


@frozen
class UpstreamRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    # OpenAI parameters the target cannot honour and that were left out of `body`.
    dropped: tuple[str, ...] = field(default=())


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    async def next_event(self) -> SSEEvent | None:
        """The next server-sent event, or None at a clean end of the stream."""
        ...

    def buffered_event(self) -> SSEEvent | None:
        """The next event if it has already arrived, without waiting; else None."""
        ...

    def release(self) -> None:
        """Done reading: the connection may be reused."""

    def close(self) -> None:
        """Abandon the response: the connection is closed at once."""


class Transport(Protocol):
    async def send(self, request: UpstreamRequest, deadline: float) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Timing:
    """When each wait of one attempt must end, in loop time."""

    attempt_deadline: float
    next_event_deadline: float
    idle_s: float

    def event_deadline(self) -> float:
        return min(self.next_event_deadline, self.attempt_deadline)


class HTTPTransport:
    """One pooled keep-alive aiohttp session per provider."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        connector = aiohttp.TCPConnector(
            limit=0,
            ttl_dns_cache=300,
            keepalive_timeout=config.keepalive_timeout_s,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout_s),
            read_bufsize=2**18,
            max_line_size=MAX_HEADER_LINE_BYTES,
            max_field_size=MAX_HEADER_LINE_BYTES,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def send(self, request: UpstreamRequest, deadline: float) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        now = loop.time()
        config = self._config
        timing = Timing(
            attempt_deadline=min(deadline, now + config.total_timeout_s),
            next_event_deadline=now + config.first_byte_timeout_s,
            idle_s=config.idle_timeout_s,
        )
        headers = request.headers
        traced = OUTBOUND.get()
        if traced is not None:  # traced: the attempt's context goes upstream; else no trace header
            headers = traced.headers(headers)
        try:
            with Deadline(timing.event_deadline()):
                response = await self._session.post(request.url, data=request.body, headers=headers)
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamTimeout(f"connect timeout after {config.connect_timeout_s:g}s") from None
        except TimeoutError:
            raise UpstreamTimeout(_first_byte_message(timing, loop.time(), now)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(f"connection failed: {_describe(exc)}") from exc
        return HTTPResponse(response, timing, config.max_response_bytes, config.max_event_bytes)

    async def aclose(self) -> None:
        await self._session.close()


class HTTPResponse:
    __slots__ = ("_max_body", "_parser", "_response", "_timing", "headers", "status")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        timing: Timing,
        max_body: int,
        max_event: int,
    ) -> None:
        self._response = response
        self._timing = timing
        self._max_body = max_body
        self._parser = SSEParser(max_event)
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            if self._response.content.is_eof():  # all here (most plain answers): no deadline
                return await self._read_bounded()
            with Deadline(self._timing.attempt_deadline):
                return await self._read_bounded()
        except TimeoutError:
            raise UpstreamTimeout("timed out reading the response body") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(f"reading the body failed: {_describe(exc)}") from exc

    async def _read_bounded(self) -> bytes:
        limit = self._max_body
        declared = self._response.content_length
        if declared is not None and declared > limit:
            raise _too_large("response body", limit)
        chunks: list[bytes] = []
        size = 0
        # Decompressed bytes are counted, so a small compressed bomb is caught too.
        async for chunk in self._response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise _too_large("response body", limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def buffered_event(self) -> SSEEvent | None:
        """The next event if it has already arrived (no waiting, no I/O), else None."""
        event = self._parser.next_event()
        if event is not None:
            timing = self._timing
            timing.next_event_deadline = asyncio.get_running_loop().time() + timing.idle_s
        return event

    async def next_event(self) -> SSEEvent | None:
        # Upstreams send several events per packet: those already here need no timer.
        event = self.buffered_event()
        if event is not None:
            return event
        timing = self._timing
        try:
            with Deadline(timing.event_deadline()):
                event = await self._read_event()
        except TimeoutError:
            raise UpstreamTimeout(_idle_message(timing)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(f"stream broken: {_describe(exc)}") from exc
        timing.next_event_deadline = asyncio.get_running_loop().time() + timing.idle_s
        return event

    async def _read_event(self) -> SSEEvent | None:
        parser = self._parser
        content = self._response.content
        while True:
            event = parser.next_event()
            if event is not None:
                return event
            chunk = await content.readany()
            if not chunk:
                return None  # end of stream; an unterminated event is discarded, per the spec
            if not parser.feed(chunk):
                raise _too_large("stream event", parser.max_event)

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


def _too_large(what: str, limit: int) -> UpstreamTooLarge:
    return UpstreamTooLarge(
        f"the upstream's {what} is larger than {limit} bytes "
        "(max_response_mb / max_event_mb of the provider)"
    )


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


def _first_byte_message(timing: Timing, now: float, started: float) -> str:
    if now >= timing.attempt_deadline - 0.001:
        return "request deadline reached waiting for the response"
    return f"no response headers within {now - started:.1f}s (first_byte_timeout_s)"


def _idle_message(timing: Timing) -> str:
    if timing.attempt_deadline <= timing.next_event_deadline:
        return "stream exceeded its total timeout or the request deadline"
    return f"no stream event within {timing.idle_s:g}s (idle/first-byte timeout)"
