"""The built-in `mock` provider: a transport that answers in OpenAI's wire format, offline.

It echoes the last user message, deterministically, with real usage counts (the same
word-and-punctuation count for prompt and completion), streams word by word, and waits
`latency_ms` before answering, so the demo alias and the tests exercise the real path.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.config import ProviderConfig
from proxy.transport import SSEEvent, UpstreamRequest, UpstreamResponse

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\S+\s*")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class MockTransport:
    def __init__(self, config: ProviderConfig) -> None:
        self._latency_s = config.latency_ms / 1000

    async def send(self, request: UpstreamRequest, deadline: float) -> UpstreamResponse:
        body = orjson.loads(request.body)
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        if request.url.endswith("/embeddings"):
            return MockResponse(body=orjson.dumps(embeddings(body)))
        messages = body.get("messages", [])
        user_texts = [message_text(m.get("content")) for m in messages if m.get("role") == "user"]
        reply = f"echo: {user_texts[-1] if user_texts else ''}".strip()
        prompt = sum(count_tokens(message_text(m.get("content"))) for m in messages)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": count_tokens(reply),
            "total_tokens": prompt + count_tokens(reply),
        }
        answer = _Answer(body.get("model", "echo"), reply, usage)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return MockResponse(events=answer.events(include_usage))
        return MockResponse(body=orjson.dumps(answer.completion()))

    async def aclose(self) -> None:
        return None


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Deterministic 8-dimensional unit-ish vectors derived from each input's hash."""
    inputs = body.get("input")
    items = (
        inputs
        if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int)
        else [inputs]
    )
    data = []
    tokens = 0
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else " ".join(map(str, item or []))
        tokens += count_tokens(text)
        digest = hashlib.sha256(text.encode()).digest()
        vector = [round(b / 255 - 0.5, 6) for b in digest[:8]]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "echo"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


class _Answer:
    def __init__(self, model: str, reply: str, usage: dict[str, int]) -> None:
        self.id = f"chatcmpl-mock-{time.monotonic_ns():x}"
        self.created = int(time.time())
        self.model = model
        self.reply = reply
        self.usage = usage

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": self.usage,
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def events(self, include_usage: bool) -> list[bytes]:
        events = [self.chunk({"role": "assistant", "content": ""})]
        events += [self.chunk({"content": word}) for word in _WORD.findall(self.reply)]
        events.append(self.chunk({}, "stop"))
        if include_usage:
            events.append(
                orjson.dumps(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": self.usage,
                    }
                )
            )
        events.append(b"[DONE]")
        return events


class MockResponse:
    def __init__(self, *, body: bytes = b"", events: list[bytes] | None = None) -> None:
        self.status = 200
        self.headers: Mapping[str, str] = {"content-type": "application/json"}
        self._body = body
        self._events = iter(events or [])

    async def read(self) -> bytes:
        return self._body

    async def next_event(self) -> SSEEvent | None:
        data = next(self._events, None)
        return None if data is None else SSEEvent(data)

    def buffered_event(self) -> SSEEvent | None:
        return None  # each event is its own chunk, as from a model that writes as it goes

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None
