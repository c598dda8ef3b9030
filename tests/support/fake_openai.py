"""An OpenAI-shaped fake upstream: by default it echoes, like the real API would answer."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_upstream import FakeUpstream, Pause, sse_reply


def completion(
    content: str | None = "hello",
    *,
    model: str = "gpt-test",
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def chunk(
    delta: dict[str, Any],
    finish_reason: str | None = None,
    *,
    model: str = "gpt-test",
    with_usage_null: bool = True,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }
    if with_usage_null:
        data["usage"] = None
    return data


def usage_chunk(prompt: int = 7, completion: int = 3, *, model: str = "gpt-test") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def stream_events(
    words: list[str], *, pause: float = 0.0, usage: bool = True, model: str = "gpt-test"
) -> list[Any]:
    """The event sequence OpenAI sends for `words`, with optional pauses between them."""
    events: list[Any] = [chunk({"role": "assistant", "content": ""}, model=model)]
    for word in words:
        if pause:
            events.append(Pause(pause))
        events.append(chunk({"content": word}, model=model))
    events.append(chunk({}, "stop", model=model))
    if usage:
        events.append(usage_chunk(7, len(words), model=model))
    events.append(b"[DONE]")
    return events


# An exhausted quota is a 429 too, told apart by its type and code (platform.openai.com
# error codes; the body as observed in ChatGPTNextWeb/NextChat#3664).
INSUFFICIENT_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}


def rate_limit_error(message: str = "Rate limit reached for requests") -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


class FakeOpenAI(FakeUpstream):
    def __init__(self) -> None:
        super().__init__(self._echo)

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if request.path.endswith("/embeddings"):
            return web.json_response(embeddings(body))
        last = body["messages"][-1].get("content")
        text = last if isinstance(last, str) else "parts"
        model = body.get("model", "gpt-test")
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            words = [w + " " for w in f"echo: {text}".split()]
            return await sse_reply(self, stream_events(words, usage=include, model=model))(request)
        return web.json_response(completion(f"echo: {text}", model=model))


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's embeddings answer: vector i is [i, 0.5, -1.25] (exact in float32)."""
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if inputs and isinstance(inputs[0], int):
        inputs = [inputs]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(i), 0.5, -1.25]}
        for i in range(len(inputs))
    ]
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": 4 * len(inputs), "total_tokens": 4 * len(inputs)},
    }
