"""Gemini GenerateContentResponse -> OpenAI completion and chunks (pure translation).

- Function calls become tool calls; a call's `thoughtSignature` rides on it as
  `extra_content.google.thought_signature` for the client to send back. Streamed calls
  go out one per chunk, as OpenAI streams them (clients rebuild them by index, and some
  keep only the first call of a chunk).
- Thought parts become `reasoning_content`; `thoughtsTokenCount` is billed as output and
  reported as `reasoning_tokens`.
- Finish reasons (python-genai's FinishReason, plus the ones Firebase's SDK lists): STOP
  is `stop` (`tool_calls` with calls), MAX_TOKENS `length` and the safety family
  `content_filter` even when calls were made; a broken answer (MALFORMED_FUNCTION_CALL,
  UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, MISSING_THOUGHT_SIGNATURE, and OTHER or an
  unknown reason with nothing in it) is an upstream failure: the gateway tries again or
  falls back rather than pass on an empty `stop`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from proxy.errors import UpstreamProtocolError
from proxy.providers.base import count, load_object
from proxy.schema import ChatCompletion, ChatCompletionChunk, Usage

FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "NO_IMAGE",
    }
)
BROKEN = frozenset(
    {
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE",
        "MALFORMED_RESPONSE",
    }
)


def finish_reason(
    reason: str | None, tool_calls: int, empty: bool = False, message: Any = None
) -> str | None:
    """OpenAI's finish reason for a candidate's, or an UpstreamProtocolError."""
    if reason is None:
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    if reason in BROKEN or (reason != "STOP" and empty):
        detail = f": {message}" if message else ""
        raise UpstreamProtocolError(f"the model stopped with {reason}{detail}")
    return "tool_calls" if tool_calls else "stop"


def from_gemini_response(data: dict[str, Any]) -> ChatCompletion:
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


class GeminiStreamTranslator:
    """Each SSE event is a whole GenerateContentResponse; the stream simply ends."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self._id = f"chatcmpl-{secrets.token_hex(12)}"
        self._created = int(time.time())
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate -> tool calls so far
        self._said: set[int] = set()  # candidates that produced text or calls
        self._open: set[int] = set()  # candidates without a finish reason yet

    def translate(self, event: Any) -> list[ChatCompletionChunk]:
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
        chunks: list[ChatCompletionChunk] = []
        first: dict[str, Any] = {}
        if index not in self._started:
            self._started.add(index)
            self._open.add(index)
            first["role"] = "assistant"
        text, calls, reasoning = _parts((candidate.get("content") or {}).get("parts") or ())
        if reasoning:
            first["reasoning_content"] = reasoning
        if text:
            first["content"] = text
            self._said.add(index)
        if first:
            chunks.append(self._chunk(index, first))
        for call in calls:  # one tool call per chunk, as OpenAI streams them
            position = self._calls.get(index, 0)
            self._calls[index] = position + 1
            self._said.add(index)
            chunks.append(self._chunk(index, {"tool_calls": [{**call, "index": position}]}))
        reason = candidate.get("finishReason")
        if reason:
            self._open.discard(index)
            finish = finish_reason(
                reason,
                self._calls.get(index, 0),
                empty=index not in self._said,
                message=candidate.get("finishMessage"),
            )
            chunks.append(self._chunk(index, {}, finish))
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
    text, calls, reasoning = _parts((candidate.get("content") or {}).get("parts") or ())
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = reasoning
    return {
        "index": candidate.get("index", position),
        "message": message,
        "finish_reason": finish_reason(
            candidate.get("finishReason"),
            len(calls),
            empty=not text and not calls,
            message=candidate.get("finishMessage"),
        ),
    }


def _parts(parts: Any) -> tuple[str, list[dict[str, Any]], str]:
    """(answer text, tool calls, thought text) of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if part.get("thought"):
            thoughts.append(str(part.get("text") or ""))
        elif "text" in part:
            texts.append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            tool_call: dict[str, Any] = {
                "id": f"call_{secrets.token_hex(12)}",
                "type": "function",
                "function": {
                    "name": call.get("name", ""),
                    "arguments": orjson.dumps(call.get("args") or {}).decode(),
                },
            }
            if part.get("thoughtSignature"):
                signature = {"thought_signature": part["thoughtSignature"]}
                tool_call["extra_content"] = {"google": signature}
            calls.append(tool_call)
    return "".join(texts), calls, "".join(thoughts)


def to_usage(metadata: Any) -> Usage | None:
    if not isinstance(metadata, dict):
        return None
    prompt = count(metadata.get("promptTokenCount"))
    # Thinking tokens are billed as output but not counted in candidatesTokenCount.
    thoughts = count(metadata.get("thoughtsTokenCount"))
    completion = count(metadata.get("candidatesTokenCount")) + thoughts
    usage: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    cached = metadata.get("cachedContentTokenCount")
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": count(cached)}
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage
