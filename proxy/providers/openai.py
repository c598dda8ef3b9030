"""OpenAI's chat-completions wire format: OpenAI itself and every server that speaks it.

Requests pass through untouched apart from the model name, the output cap and
`stream_options`, so new OpenAI parameters (tools, response_format, seed, logprobs,
images) work without a release. Variants with documented differences override
`adjust()` (the request) and `normalize()` (each answer and stream chunk).

OpenAI's own reasoning models (the o-series and gpt-5, but not gpt-5-chat) refuse
sampling parameters ("Unsupported value: 'temperature' does not support 0.5 with this
model. Only the default (1) value is supported."; likewise top_p, the penalties,
logprobs and logit_bias): those are dropped and named, and the cap goes as
`max_completion_tokens` (they refuse `max_tokens`).
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from proxy.config import ProviderConfig
from proxy.errors import UpstreamFailure, UpstreamHTTPError, UpstreamProtocolError
from proxy.providers.base import clean_usage, load_object
from proxy.providers.errors import openai_error
from proxy.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    EmbeddingsRequest,
    Usage,
    max_output_tokens,
)
from proxy.transport import SSEEvent, UpstreamRequest

REASONING_MODEL = re.compile(r"(o\d|gpt-5)(?!.*-chat)")
SAMPLING = (
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
)


# Message fields the gateway hands out for other providers, and tool-call fields.
EXTENSIONS = frozenset({"thinking_blocks", "reasoning_content"})
CALL_EXTENSIONS = frozenset({"extra_content"})
ALL_EXTENSIONS = EXTENSIONS | CALL_EXTENSIONS


class OpenAIAdapter:
    # Servers that cannot return base64 vectors get float ones, encoded by the gateway.
    embeddings_base64 = True
    # Where the output cap goes. OpenAI reads max_completion_tokens on every chat model
    # (its reasoning models refuse max_tokens); most other servers read max_tokens.
    output_field = "max_completion_tokens"
    # Fields the gateway adds to messages for other providers (Claude's thinking blocks,
    # Gemini's signatures, reasoning text) that this server does not take back.
    kept_extensions: frozenset[str] = frozenset()

    def __init__(self, config: ProviderConfig) -> None:
        self._base_url = config.base_url
        self._url = f"{config.base_url}/chat/completions"
        self._embeddings_url = f"{config.base_url}/embeddings"
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._headers = headers

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, request_id: str
    ) -> UpstreamRequest:
        body: dict[str, Any] = dict(request)
        body["model"] = model
        body["messages"] = strip_extensions(body["messages"], self.kept_extensions)
        # One cap, in one field: given both, the smaller (what the reservation used).
        cap = max_output_tokens(body)
        body.pop("max_tokens", None)
        body.pop("max_completion_tokens", None)
        if cap is not None:
            body[self.output_field] = cap
        if stream:
            # Always ask for usage, so every stream can be costed; the relay drops the
            # usage chunk again when the client did not ask for it.
            body["stream_options"] = {
                **(request.get("stream_options") or {}),
                "include_usage": True,
            }
        else:
            body.pop("stream_options", None)
        dropped = self.adjust(body)
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(self._url, headers, orjson.dumps(body), dropped)

    def native_request(
        self, path: str, body: Mapping[str, Any], *, request_id: str
    ) -> UpstreamRequest:
        """A body of another of the server's APIs (`/responses`), sent as it is."""
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(self._base_url + path, headers, orjson.dumps(body))

    def adjust(self, body: dict[str, Any]) -> tuple[str, ...]:
        """Fit the body to this server's dialect; return the parameters left out."""
        if not REASONING_MODEL.match(body["model"]):
            return ()
        dropped = [name for name in SAMPLING if body.pop(name, None) not in (None, False)]
        temperature = body.pop("temperature", None)
        if temperature == 1:
            body["temperature"] = 1
        elif temperature is not None:
            dropped.append("temperature")
        return tuple(dropped)

    def normalize(self, data: dict[str, Any]) -> None:
        """Fit an answer or a stream chunk to OpenAI's shape (counts clamped). The tier
        the request was served at (flex, priority) is priced differently: it rides on
        the usage, which is what the gateway prices."""
        usage = data.get("usage")
        if usage:
            usage = data["usage"] = clean_usage(usage)
            tier = data.get("service_tier")
            if isinstance(tier, str) and isinstance(usage, dict):
                usage["service_tier"] = tier

    def chat_response(self, body: bytes) -> ChatCompletion:
        data = load_object(body)
        if not isinstance(data.get("choices"), list):
            raise UpstreamProtocolError("upstream response has no 'choices' array")
        self.normalize(data)
        return data  # type: ignore[return-value]

    def embeddings_request(
        self, request: EmbeddingsRequest, model: str, *, request_id: str
    ) -> UpstreamRequest:
        body: dict[str, Any] = dict(request)
        body["model"] = model
        if not self.embeddings_base64:
            body.pop("encoding_format", None)
        dropped = self.adjust_embeddings(body)
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(self._embeddings_url, headers, orjson.dumps(body), dropped)

    def adjust_embeddings(self, body: dict[str, Any]) -> tuple[str, ...]:
        return ()

    def embeddings_response(self, body: bytes, request: EmbeddingsRequest) -> dict[str, Any]:
        data = load_object(body)
        if not isinstance(data.get("data"), list):
            raise UpstreamProtocolError("upstream embeddings response has no 'data' array")
        if request.get("encoding_format") == "base64" and not self.embeddings_base64:
            encode_base64(data)
        return data

    def stream_translator(self) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(self.normalize)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return openai_error(status, body, headers)


class OpenAICompatibleAdapter(OpenAIAdapter):
    """vLLM, Ollama, LM Studio and the like: max_tokens is the field they all read, and
    their model names mean nothing about OpenAI's reasoning models."""

    output_field = "max_tokens"
    # Passed through untouched: the server may be Google's own OpenAI-compatible endpoint,
    # which needs its thought signatures back.
    kept_extensions = ALL_EXTENSIONS

    def adjust(self, body: dict[str, Any]) -> tuple[str, ...]:
        return ()


class OpenAIStreamTranslator:
    __slots__ = ("_normalize", "finished", "usage")

    def __init__(self, normalize: Callable[[dict[str, Any]], None]) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self._normalize = normalize

    def translate(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        if event.data == b"[DONE]":
            self.finished = True
            return []
        chunk = load_object(event.data)
        if "error" in chunk:
            raise stream_error(chunk["error"])
        self._normalize(chunk)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if not isinstance(chunk.get("choices"), list):
            raise UpstreamProtocolError("stream chunk has no 'choices' array")
        return [chunk]  # type: ignore[list-item]


def strip_extensions(messages: list[Any], kept: frozenset[str]) -> list[Any]:
    """The messages without the gateway's own additions this server would refuse; the
    same list when there is nothing to remove (the usual case, no copy)."""
    if kept >= ALL_EXTENSIONS:
        return messages
    dropped, dropped_call = EXTENSIONS - kept, CALL_EXTENSIONS - kept
    if not any(_has(m, dropped, dropped_call) for m in messages):
        return messages
    cleaned = []
    for message in messages:
        if _has(message, dropped, dropped_call):
            message = {k: v for k, v in message.items() if k not in dropped}
            if message.get("tool_calls"):
                message["tool_calls"] = [
                    {k: v for k, v in call.items() if k not in dropped_call}
                    for call in message["tool_calls"]
                ]
        cleaned.append(message)
    return cleaned


def _has(message: Any, fields: frozenset[str], call_fields: frozenset[str]) -> bool:
    if not isinstance(message, dict):
        return False
    if not fields.isdisjoint(message):
        return True
    calls = message.get("tool_calls") or ()
    return any(isinstance(c, dict) and not call_fields.isdisjoint(c) for c in calls)


def stream_error(error: Any) -> UpstreamFailure:
    message = error.get("message") if isinstance(error, dict) else None
    return UpstreamProtocolError(f"upstream sent an error event: {message or error}")


def encode_base64(data: dict[str, Any]) -> None:
    """Float vectors -> OpenAI's base64 form: little-endian float32, base64-encoded."""
    for item in data["data"]:
        vector = item.get("embedding")
        if isinstance(vector, list):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
