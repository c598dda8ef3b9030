"""The I/O seam between adapters and upstreams: send one request, read a body or SSE events.

`HTTPTransport` is the only code that touches aiohttp; its exceptions are translated here,
once, into `proxy.errors.UpstreamFailure`. Every wait is bounded: connect, first byte,
the gap between stream events, and the attempt's overall deadline (loop time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from proxy.config import ProviderConfig
from proxy.errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout

MAX_EVENT_LINE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    # OpenAI parameters the target cannot honour and that were left out of `body`.
    dropped: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: bytes
    event: str | None = None


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    async def next_event(self) -> SSEEvent | None:
        """The next server-sent event, or None at a clean end of the stream."""
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
            max_line_size=MAX_EVENT_LINE_BYTES,
            max_field_size=64 * 1024,
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
        try:
            async with asyncio.timeout_at(timing.event_deadline()):
                response = await self._session.post(
                    request.url, data=request.body, headers=request.headers
                )
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamTimeout(f"connect timeout after {config.connect_timeout_s:g}s") from None
        except TimeoutError:
            raise UpstreamTimeout(_first_byte_message(timing, loop.time(), now)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(f"connection failed: {_describe(exc)}") from exc
        return HTTPResponse(response, timing)

    async def aclose(self) -> None:
        await self._session.close()


class HTTPResponse:
    __slots__ = ("_pending", "_response", "_timing", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, timing: Timing) -> None:
        self._response = response
        self._timing = timing
        self._pending: list[bytes] = []
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout_at(self._timing.attempt_deadline):
                return await self._response.read()
        except TimeoutError:
            raise UpstreamTimeout("timed out reading the response body") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(f"reading the body failed: {_describe(exc)}") from exc

    async def next_event(self) -> SSEEvent | None:
        timing = self._timing
        try:
            async with asyncio.timeout_at(timing.event_deadline()):
                event = await self._read_event()
        except TimeoutError:
            raise UpstreamTimeout(_idle_message(timing)) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamConnectError(f"stream broken: {_describe(exc)}") from exc
        except ValueError as exc:  # a line longer than the reader's limit
            raise UpstreamProtocolError(f"malformed event stream: {exc}") from exc
        timing.next_event_deadline = asyncio.get_running_loop().time() + timing.idle_s
        return event

    async def _read_event(self) -> SSEEvent | None:
        content = self._response.content
        data = self._pending
        event: str | None = None
        while True:
            line = await content.readline()
            if not line:
                return None  # end of stream; an unterminated event is discarded, per the spec
            line = line.rstrip(b"\r\n")
            if not line:
                if data:
                    self._pending = []
                    return SSEEvent(b"\n".join(data), event)
                event = None
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
            # comments (":") and other fields (id, retry) carry nothing for us

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


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
