"""Google Gemini (generateContent, streamGenerateContent with alt=sse, batchEmbedContents).

The API key travels in the `x-goog-api-key` header, never in the URL: URLs end up in logs.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.config import ProviderConfig
from proxy.errors import InvalidRequest, UpstreamHTTPError, UpstreamProtocolError
from proxy.providers.base import count, load_object
from proxy.providers.errors import gemini_error
from proxy.providers.gemini_request import to_gemini_request
from proxy.providers.openai import encode_base64
from proxy.schema import ChatCompletion, ChatCompletionChunk, ChatRequest, EmbeddingsRequest, Usage
from proxy.transport import SSEEvent, UpstreamRequest

FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)


class GeminiAdapter:
    def __init__(self, config: ProviderConfig) -> None:
        self._base = config.base_url
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        self._headers = headers

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, request_id: str
    ) -> UpstreamRequest:
        body, dropped = to_gemini_request(dict(request))
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{self._base}/models/{model}:{method}"
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(url, headers, orjson.dumps(body), dropped)

    def chat_response(self, body: bytes) -> ChatCompletion:
        data = load_object(body)
        choices = [_choice(c, i) for i, c in enumerate(data.get("candidates") or ())]
        if not choices:
            # A prompt blocked before any candidate: an empty, filtered answer.
            choices = [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ""},
                    "finish_reason": "content_filter",
                }
            ]
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{data.get('responseId') or secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": data.get("modelVersion", ""),
            "choices": choices,
        }
        usage = to_usage(data.get("usageMetadata"))
        if usage:
            completion["usage"] = usage
        return completion  # type: ignore[return-value]

    def stream_translator(self) -> GeminiStreamTranslator:
        return GeminiStreamTranslator()

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return gemini_error(status, body, headers)

    def embeddings_request(
        self, request: EmbeddingsRequest, model: str, *, request_id: str
    ) -> UpstreamRequest:
        inputs = request["input"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("this model takes text input, not token arrays", param="input")
        one: dict[str, Any] = {"model": f"models/{model}"}
        if request.get("dimensions"):
            one["outputDimensionality"] = request["dimensions"]
        body = {"requests": [{**one, "content": {"parts": [{"text": t}]}} for t in texts]}
        dropped = ("user",) if request.get("user") else ()
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(
            f"{self._base}/models/{model}:batchEmbedContents",
            headers,
            orjson.dumps(body),
            dropped,
        )

    def embeddings_response(self, body: bytes, request: EmbeddingsRequest) -> dict[str, Any]:
        data = load_object(body)
        vectors = data.get("embeddings")
        if not isinstance(vectors, list):
            raise UpstreamProtocolError("upstream embeddings response has no 'embeddings'")
        inputs = request["input"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        # Gemini reports no token counts for embeddings: estimated, ~4 characters a token.
        tokens = sum(math.ceil(len(str(t)) / 4) for t in texts)
        answer: dict[str, Any] = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v.get("values", [])}
                for i, v in enumerate(vectors)
            ],
            "model": "",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if request.get("encoding_format") == "base64":
            encode_base64(answer)
        return answer


class GeminiStreamTranslator:
    """Each SSE event is a whole GenerateContentResponse; the stream simply ends."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self._id = f"chatcmpl-{secrets.token_hex(12)}"
        self._created = int(time.time())
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate -> tool calls so far
        self._open: set[int] = set()  # candidates without a finish reason yet

    def translate(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        data = load_object(event.data)
        if "error" in data:
            message = (data["error"] or {}).get("message", "error")
            raise UpstreamProtocolError(f"upstream sent an error event: {message}")
        chunks: list[ChatCompletionChunk] = []
        candidates = data.get("candidates") or ()
        for position, candidate in enumerate(candidates):
            chunks += self._candidate(candidate, candidate.get("index", position))
        usage = to_usage(data.get("usageMetadata"))
        if usage:
            self.usage = usage
        blocked = not candidates and (data.get("promptFeedback") or {}).get("blockReason")
        if blocked:
            chunks.append(self._chunk(0, {"role": "assistant", "content": ""}, "content_filter"))
        if blocked or (self._started and not self._open):
            self.finished = True
            if self.usage:
                chunks.append(self._usage_chunk(self.usage))
        return chunks

    def _candidate(self, candidate: dict[str, Any], index: int) -> list[ChatCompletionChunk]:
        delta: dict[str, Any] = {}
        if index not in self._started:
            self._started.add(index)
            self._open.add(index)
            delta["role"] = "assistant"
        text, calls = _parts((candidate.get("content") or {}).get("parts") or ())
        if text:
            delta["content"] = text
        if calls:
            first = self._calls.get(index, 0)
            delta["tool_calls"] = [{**call, "index": first + i} for i, call in enumerate(calls)]
            self._calls[index] = first + len(calls)
        chunks = [self._chunk(index, delta)] if delta else []
        reason = candidate.get("finishReason")
        if reason:
            self._open.discard(index)
            chunks.append(self._chunk(index, {}, finish_reason(reason, self._calls.get(index, 0))))
        return chunks

    def _chunk(
        self, index: int, delta: dict[str, Any], finish: str | None = None
    ) -> ChatCompletionChunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": "",
            "choices": [
                {
                    "index": index,
                    "delta": delta,  # type: ignore[typeddict-item]
                    "finish_reason": finish,
                }
            ],
        }

    def _usage_chunk(self, usage: Usage) -> ChatCompletionChunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": "",
            "choices": [],
            "usage": usage,
        }


def _choice(candidate: dict[str, Any], position: int) -> dict[str, Any]:
    text, calls = _parts((candidate.get("content") or {}).get("parts") or ())
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "index": candidate.get("index", position),
        "message": message,
        "finish_reason": finish_reason(candidate.get("finishReason"), len(calls)),
    }


def _parts(parts: Any) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if part.get("thought"):
            continue  # the model's reasoning summary is not part of the answer
        if "text" in part:
            texts.append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            calls.append(
                {
                    "id": f"call_{secrets.token_hex(12)}",
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return "".join(texts), calls


def finish_reason(reason: str | None, tool_calls: int) -> str | None:
    if reason is None:
        return None
    if tool_calls:
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "stop"


def to_usage(metadata: Any) -> Usage | None:
    if not isinstance(metadata, dict):
        return None
    prompt = count(metadata.get("promptTokenCount"))
    # Thinking tokens are billed as output but not counted in candidatesTokenCount.
    completion = count(metadata.get("candidatesTokenCount")) + count(
        metadata.get("thoughtsTokenCount")
    )
    usage: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = metadata.get("cachedContentTokenCount")
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": count(cached)}
    return usage
