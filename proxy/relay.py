"""Streaming: open an upstream stream up to its first content, then relay it to the client.

Until the first content or tool-call delta, nothing reaches the client, so an upstream that
fails early can still be replaced by the next route. After that, a failure ends the stream
with an SSE error event: never a hang, never a truncated stream that looks complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter
from typing import Any

import orjson

from proxy.errors import UpstreamFailure, UpstreamProtocolError
from proxy.providers.base import Adapter, StreamTranslator
from proxy.record import RequestRecord
from proxy.router import Route
from proxy.schema import ChatCompletionChunk, ChatRequest
from proxy.transport import UpstreamResponse

DONE = b"data: [DONE]\n\n"
_CONTENT_FIELDS = ("content", "tool_calls", "refusal", "function_call", "reasoning_content")


@dataclass(slots=True)
class OpenedStream:
    response: UpstreamResponse
    translator: StreamTranslator
    held: list[ChatCompletionChunk]
    dropped: tuple[str, ...]


def has_content(chunk: ChatCompletionChunk) -> bool:
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta") or {}
        if any(delta.get(name) for name in _CONTENT_FIELDS):
            return True
    return False


async def open_stream(
    route: Route, adapter: Adapter, request: ChatRequest, record: RequestRecord, deadline: float
) -> OpenedStream:
    """One attempt: send, then read until there is something worth committing to."""
    upstream = adapter.chat_request(request, route.model, stream=True, request_id=record.request_id)
    started = perf_counter()
    response = await route.provider.transport.send(upstream, deadline)
    try:
        if response.status != 200:
            raise adapter.error(response.status, await response.read(), response.headers)
        translator = adapter.stream_translator()
        held: list[ChatCompletionChunk] = []
        while True:
            event = await response.next_event()
            if event is None:
                if translator.finished:
                    break
                raise UpstreamProtocolError("the upstream ended the stream before any content")
            chunks = translator.translate(event)
            held.extend(chunks)
            if translator.finished or any(has_content(c) for c in chunks):
                break
    except BaseException:
        response.close()
        raise
    finally:
        record.upstream_wait_s += perf_counter() - started
    route.observe_latency(perf_counter() - started)
    return OpenedStream(response, translator, held, upstream.dropped)


class ChunkEncoder:
    """OpenAI chunk -> SSE bytes, as the client asked for them.

    It also counts the content characters that went out, for a usage estimate when an
    upstream never reports usage.
    """

    __slots__ = ("_alias", "_keep_usage", "content_chars")

    def __init__(self, alias: str, keep_usage: bool) -> None:
        self._alias = alias
        self._keep_usage = keep_usage
        self.content_chars = 0

    def encode(self, chunk: ChatCompletionChunk) -> bytes | None:
        chunk["model"] = self._alias
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.content_chars += len(content)
            for call in delta.get("tool_calls") or ():
                self.content_chars += len((call.get("function") or {}).get("arguments") or "")
        if not self._keep_usage and "usage" in chunk:
            if not chunk["choices"]:
                return None  # the usage-only chunk the gateway asked for, not the client
            del chunk["usage"]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def encode_all(self, chunks: list[ChatCompletionChunk]) -> bytes:
        return b"".join(filter(None, map(self.encode, chunks)))


def error_event(failure: UpstreamFailure) -> bytes:
    error = {
        "message": f"the upstream failed mid-stream: {failure.reason}",
        "type": "api_error",
        "param": None,
        "code": "upstream_stream_error",
    }
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


def replay(completion: dict[str, Any], keep_usage: bool) -> bytes:
    """A stored chat.completion as a complete SSE stream, for a cached answer."""
    events = []
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
        events.append(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}
        )
        events.append(
            {
                **base,
                "choices": [
                    {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
                ],
            }
        )
    if keep_usage and completion.get("usage"):
        events.append({**base, "choices": [], "usage": completion["usage"]})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + DONE
