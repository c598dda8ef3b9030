"""An OpenAI-shaped fake upstream: by default it echoes, like the real API would answer.

Chat Completions and embeddings are answered here; the Responses API (`/v1/responses...`)
lives in fake_responses.py, which this fake dispatches to by path.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_responses import REASONING_MODEL as REASONING_MODEL
from tests.support.fake_responses import ResponsesAPI, openai_error
from tests.support.fake_upstream import FakeUpstream, Pause, json_reply, sse_reply


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


UNSUPPORTED_BY_REASONING = (
    "max_tokens",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
)
# Mistral's chat completion request fields (mistralai client: ChatCompletionRequest); any
# other is a 422 "Extra inputs are not permitted".
MISTRAL_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "safe_prompt",
        "prompt_mode",
        "reasoning_effort",
        "metadata",
    }
)


def openai_problem(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """OpenAI's reasoning models refuse sampling parameters and max_tokens (errors as the
    API words them; openai-python's CompletionCreateParams docstrings)."""
    if not REASONING_MODEL.match(str(body.get("model"))):
        return None
    for name in UNSUPPORTED_BY_REASONING:
        if body.get(name) not in (None, False):
            hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
            message = f"Unsupported parameter: '{name}' is not supported with this model.{hint}"
            return 400, _openai_error(message, name, "unsupported_parameter")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        message = (
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported."
        )
        return 400, _openai_error(message, "temperature", "unsupported_value")
    return None


def deepseek_problem(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """DeepSeek knows four roles (its 422 as observed in eclipse-theia/theia#15144)."""
    for i, message in enumerate(body.get("messages", ())):
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            text = (
                "Failed to deserialize the JSON body into the target type: "
                f"messages[{i}].role: unknown variant `{message.get('role')}`, expected one of "
                "`system`, `user`, `assistant`, `tool`"
            )
            return 422, _openai_error(text, None, "invalid_request_error")
    return None


def mistral_problem(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    extra = sorted(set(body) - MISTRAL_FIELDS)
    if not extra:
        return None
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", extra[0]],
            "msg": "Extra inputs are not permitted",
        }
    ]
    error = {
        "object": "error",
        "message": {"detail": detail},
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    return 422, error


def _openai_error(message: str, param: str | None, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


DIALECTS = {"openai": openai_problem, "deepseek": deepseek_problem, "mistral": mistral_problem}


class FakeOpenAI(FakeUpstream):
    """An OpenAI-shaped upstream; `dialect` adds what DeepSeek's or Mistral's API refuses."""

    def __init__(self, dialect: str = "openai") -> None:
        super().__init__(self._echo)
        self.dialect = dialect
        self._problem = DIALECTS[dialect]
        # The Responses API and what it stored (fake_responses.py); OpenAI's own API only.
        self.responses_api = ResponsesAPI()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if ResponsesAPI.handles(request.path):
            problem = self._responses_problem(request, raw)
        else:
            body = orjson.loads(raw) if raw else {}
            problem = None if request.path.endswith("/embeddings") else self._problem(body)
        if problem is not None:
            self.queue.appendleft(json_reply(problem[1], status=problem[0]))
        return await super()._handle(request)

    def _responses_problem(self, request: web.Request, raw: bytes) -> tuple[int, Any] | None:
        if self.dialect != "openai":  # DeepSeek and Mistral have no Responses API
            return 404, openai_error(f"Invalid URL ({request.method} {request.path})")
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        return self.responses_api.problem(request.method, request.path, body)

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        if ResponsesAPI.handles(request.path):
            return await self.responses_api.reply(self, request)
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
