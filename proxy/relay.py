"""Streaming: open an upstream stream up to its first content, then relay it to the client.

Until the first content or tool-call delta, nothing reaches the client, so an upstream that
fails early can still be replaced by the next route. After that, a failure ends the stream
with an SSE error event: never a hang, never a truncated stream that looks complete. A
client that leaves mid-stream stops the relay, but the upstream is read on (for up to
`[budgets] usage_drain_s`) so the usage it reports at its end, what it bills, is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

import orjson
import structlog
from starlette.types import Send

from proxy.asgi import DisconnectWatcher
from proxy.errors import UpstreamFailure, UpstreamProtocolError
from proxy.estimate import estimate_tokens
from proxy.providers.base import StreamTranslator
from proxy.record import RequestRecord
from proxy.router import Route
from proxy.schema import ChatCompletionChunk
from proxy.transport import UpstreamRequest, UpstreamResponse

log = structlog.get_logger("proxy.relay")
DONE = b"data: [DONE]\n\n"
# A debug capture of a stream stops growing here; the log truncates further.
CAPTURE_LIMIT = 1024 * 1024
_CONTENT_FIELDS = ("content", "tool_calls", "refusal", "function_call", "reasoning_content")


class StreamEncoder(Protocol):
    """Chunks (the internal model's, or a native route's own events) -> the client's SSE."""

    completion_tokens: int  # estimated from what went through, for a stream cut short

    def encode_all(self, chunks: list[Any]) -> bytes: ...

    def count(self, chunks: list[Any]) -> None:
        """Estimate the tokens of chunks that are not sent (the client is gone)."""
        ...

    def finish(self) -> bytes:
        """What ends a complete stream ([DONE], message_stop, response.completed)."""
        ...

    def fail(self, failure: UpstreamFailure) -> bytes:
        """What ends a stream whose upstream failed after it began."""
        ...


@dataclass(slots=True)
class OpenedStream:
    response: UpstreamResponse
    translator: StreamTranslator
    held: list[Any]  # chunks (or a native route's events) read before committing
    dropped: tuple[str, ...]


def has_content(chunk: ChatCompletionChunk) -> bool:
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta") or {}
        if any(delta.get(name) for name in _CONTENT_FIELDS):
            return True
    return False


async def open_upstream(
    route: Route,
    upstream: UpstreamRequest,
    translator: StreamTranslator,
    error: Callable[[int, bytes, Mapping[str, str]], UpstreamFailure],
    record: RequestRecord,
    deadline: float,
    committed: Callable[[Any], bool] = has_content,
) -> OpenedStream:
    """Send, then read until there is something worth committing to (`committed`)."""
    started = perf_counter()
    record.sent, record.sent_price = True, route.price
    response = await route.provider.transport.send(upstream, deadline)
    try:
        if response.status != 200:
            raise error(response.status, await response.read(), response.headers)
        held: list[Any] = []
        while True:
            event = await response.next_event()
            if event is None:
                if translator.finished:
                    break
                raise UpstreamProtocolError("the upstream ended the stream before any content")
            chunks = translator.translate(event)
            held.extend(chunks)
            if translator.finished or any(committed(c) for c in chunks):
                break
    except BaseException:
        response.close()
        raise
    finally:
        record.upstream_wait_s += perf_counter() - started
    route.observe_latency(perf_counter() - started)
    return OpenedStream(response, translator, held, upstream.dropped)


async def relay_rest(
    opened: OpenedStream,
    encoder: StreamEncoder,
    record: RequestRecord,
    send: Send,
    watcher: DisconnectWatcher,
    scrub: Callable[[str], str],
    drain_s: float,
) -> None:
    """Send what was held back, then every further event, then [DONE] or an error event."""
    response, translator = opened.response, opened.translator
    capture = bytearray() if record.debug else None
    try:
        await send_chunk(send, encoder.encode_all(opened.held), capture)
        while not translator.finished:
            started = perf_counter()
            event = await response.next_event()
            record.upstream_wait_s += perf_counter() - started
            if event is None:
                raise UpstreamProtocolError("the upstream closed the stream before its end")
            out = encoder.encode_all(translator.translate(event))
            # Events that arrived together leave together: one write, not one per event.
            try:
                while not translator.finished and (more := response.buffered_event()):
                    out += encoder.encode_all(translator.translate(more))
            except UpstreamFailure:
                await send_chunk(send, out, capture)  # what came before the failure goes out
                raise
            await send_chunk(send, out, capture)
        response.release()
        ending = encoder.finish()
    except UpstreamFailure as failure:
        failure.redact(scrub)
        response.close()
        record.error_type, record.error_message = "upstream_stream_error", failure.reason
        log.warning("stream_failed", request_id=record.request_id, reason=failure.reason)
        ending = encoder.fail(failure)
    except asyncio.CancelledError:
        if watcher.disconnected:
            await drain_usage(opened, encoder, drain_s)
        response.close()
        raise
    except BaseException:
        response.close()
        raise
    finally:
        if capture is not None:
            record.response_body = bytes(capture)
    watcher.stop()
    await send({"type": "http.response.body", "body": ending, "more_body": False})
    if capture is not None:
        record.response_body += ending


async def drain_usage(opened: OpenedStream, encoder: StreamEncoder, seconds: float) -> None:
    """The client has left: read the rest of the stream, sending nothing, for up to
    `seconds`, so its final usage is known; what arrives is counted for the estimate."""
    translator = opened.translator
    if seconds <= 0 or translator.finished:
        return
    try:
        async with asyncio.timeout(seconds):
            while not translator.finished:
                event = await opened.response.next_event()
                if event is None:
                    return
                encoder.count(translator.translate(event))
    except (TimeoutError, UpstreamFailure):
        return


async def send_chunk(send: Send, data: bytes, capture: bytearray | None = None) -> None:
    if data:
        if capture is not None and len(capture) < CAPTURE_LIMIT:
            capture += data
        await send({"type": "http.response.body", "body": data, "more_body": True})


class ChunkEncoder:
    """OpenAI chunk -> SSE bytes, as the client asked for them.

    It also estimates the completion tokens of every chunk it sees, for the bill of a
    stream whose upstream never reported usage (or whose client left).
    """

    __slots__ = ("_alias", "_keep_usage", "completion_tokens")

    def __init__(self, alias: str, keep_usage: bool) -> None:
        self._alias = alias
        self._keep_usage = keep_usage
        self.completion_tokens = 0

    def count(self, chunks: list[ChatCompletionChunk]) -> None:
        """Estimate the tokens of chunks that are not sent (the client is gone)."""
        for chunk in chunks:
            self.completion_tokens += generated_tokens(chunk)

    def encode(self, chunk: ChatCompletionChunk) -> bytes | None:
        chunk["model"] = self._alias
        self.completion_tokens += generated_tokens(chunk)
        if not self._keep_usage and "usage" in chunk:
            if not chunk["choices"]:
                return None  # the usage-only chunk the gateway asked for, not the client
            del chunk["usage"]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def encode_all(self, chunks: list[ChatCompletionChunk]) -> bytes:
        return b"".join(filter(None, map(self.encode, chunks)))

    def finish(self) -> bytes:
        return DONE

    def fail(self, failure: UpstreamFailure) -> bytes:
        return error_event(failure)


def generated_tokens(chunk: ChatCompletionChunk) -> int:
    tokens = 0
    for choice in chunk["choices"]:
        delta = choice.get("delta") or {}
        for text in (delta.get("content"), delta.get("reasoning_content")):
            if text:
                tokens += estimate_tokens(text)
        for call in delta.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments")
            if arguments:
                tokens += estimate_tokens(arguments)
    return tokens


def error_event(failure: UpstreamFailure) -> bytes:
    error = {
        "message": f"the upstream failed mid-stream: {failure.reason}",
        "type": "api_error",
        "param": None,
        "code": "upstream_stream_error",
    }
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


def completion_chunks(completion: dict[str, Any]) -> list[ChatCompletionChunk]:
    """A stored chat.completion as the chunks of a stream, for a cached answer; the usage
    chunk last (each encoder keeps it or not, as its client asked)."""
    chunks: list[Any] = []
    base = {k: completion.get(k) for k in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk"
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        index = choice.get("index", 0)
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {**call, "index": i} for i, call in enumerate(message["tool_calls"])
            ]
        finish = choice.get("finish_reason")
        chunks.append(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
        )
        chunks.append({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    if completion.get("usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
