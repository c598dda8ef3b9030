"""The internal chat answer -> an Anthropic `Message`, plain or as Messages stream events.

Shapes follow the Messages API reference and the anthropic SDK's types: every field a
`Message` requires is present, `usage.input_tokens` excludes cached input (Anthropic
counts cache reads and writes apart), and a stream is `message_start` (empty content,
usage present), one content block at a time with indices 0, 1, 2, ..., `message_delta`
with the final usage, `message_stop`; every event carries its `event:` line, which the
SDK dispatches on. The SDK's stream accumulator fails on anything else.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from proxy.dialects.base import DeltaEncoder
from proxy.errors import GatewayError, UpstreamFailure, UpstreamProtocolError
from proxy.providers.base import count
from proxy.schema import ChatCompletion, Usage

# chat finish_reason -> Anthropic stop_reason.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# HTTP status -> Anthropic error type (platform.claude.com/docs/en/api/errors). A gateway
# 502/503 (every route failed, draining) is Anthropic's 529: the SDK retries it.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "overloaded_error",
    503: "overloaded_error",
    504: "timeout_error",
}
OVERLOADED = 529


def message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def anthropic_error(error: GatewayError) -> tuple[int, bytes]:
    """The gateway's error in Anthropic's shape and status conventions."""
    kind = ERROR_TYPES.get(error.status, "api_error")
    status = OVERLOADED if kind == "overloaded_error" else error.status
    body = {"type": "error", "error": {"type": kind, "message": error.message}}
    return status, orjson.dumps(body)


def anthropic_usage(usage: Usage | None) -> dict[str, Any]:
    """Chat usage as Anthropic counts it: input_tokens is the uncached part only."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = count(details.get("cached_tokens"))
    written = count(details.get("cache_creation_tokens"))
    prompt = count(usage.get("prompt_tokens"))
    return {
        "input_tokens": max(prompt - cached - written, 0),
        "output_tokens": count(usage.get("completion_tokens")),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as the object `tool_use.input` must be ({} if they are not)."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def to_message(completion: ChatCompletion, *, show_thinking: bool) -> dict[str, Any]:
    choice = completion["choices"][0] if completion.get("choices") else None
    message = choice["message"] if choice is not None else {}
    blocks: list[dict[str, Any]] = []
    if show_thinking and message.get("reasoning_content"):
        blocks.append(
            {"type": "thinking", "thinking": message["reasoning_content"], "signature": ""}
        )
    content = message.get("content")
    if isinstance(content, list):  # some servers answer in parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    refusal = message.get("refusal")
    text = (content or "") + (refusal if isinstance(refusal, str) else "")
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{secrets.token_hex(12)}",
                "name": function.get("name", ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    finish = choice.get("finish_reason") if choice is not None else None
    if refusal:
        finish = "content_filter"
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": completion["model"],
        "content": blocks,
        "stop_reason": STOP_REASONS.get(finish or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(failure: UpstreamFailure) -> bytes:
    error = {"type": "api_error", "message": f"the upstream failed mid-stream: {failure.reason}"}
    return event("error", {"type": "error", "error": error})


class MessagesEncoder(DeltaEncoder):
    """Chat chunks -> Messages stream events, one content block open at a time."""

    def __init__(self, alias: str, *, show_thinking: bool) -> None:
        super().__init__()
        self._alias = alias
        self._show_thinking = show_thinking
        self._started = False
        self._index = -1  # the open block's index; blocks are numbered as they start
        self._block: str | None = None  # the open block's type
        self._tool: int | None = None  # the chat tool-call index of the open tool block
        self._tools: set[int] = set()  # every tool call's index seen so far
        self._arguments = ""  # the open tool block's arguments, sent whole when it closes
        self._refused = False

    def finish(self) -> bytes:
        usage = anthropic_usage(self._usage)
        if self._usage is None:  # never reported: what went through, estimated
            usage["output_tokens"] = self.completion_tokens
        finish = "content_filter" if self._refused else self._finish or "stop"
        stop_reason = STOP_REASONS.get(finish, "end_turn")
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        return (
            self._start()
            + self._close()
            + event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
            + event("message_stop", {"type": "message_stop"})
        )

    def fail(self, failure: UpstreamFailure) -> bytes:
        return self._start() + self._close() + error_event(failure)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._alias,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The counts come with message_delta: chat upstreams report them at the end.
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message}) + event(
            "ping", {"type": "ping"}
        )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out = b""
        thinking = delta.get("reasoning_content")
        if thinking and self._show_thinking:
            out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out += self._block_delta({"type": "thinking_delta", "thinking": thinking})
        refusal = delta.get("refusal")
        if refusal:
            self._refused = True
        text = (delta.get("content") or "") + (refusal or "")
        if text:
            out += self._open("text", {"type": "text", "text": ""})
            out += self._block_delta({"type": "text_delta", "text": text})
        for call in delta.get("tool_calls") or ():
            out += self._tool_delta(call)
        return out

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index != self._tool:
            if index in self._tools:
                # A fragment of a call whose block is already closed: Messages blocks
                # cannot be reopened, and a silently broken input would look complete.
                raise UpstreamProtocolError("the upstream interleaved tool-call arguments")
            self._tools.add(index)
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{secrets.token_hex(12)}",
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open(f"tool_use:{index}", block)
            self._tool = index
        arguments = function.get("arguments")
        if arguments:
            self._arguments += arguments
        return out

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        if self._block == kind:
            return b""
        out = self._close()
        self._index += 1
        self._block = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + event("content_block_start", start)

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        out = b""
        if self._tool is not None:
            # The arguments in one piece, as an object: the SDK parses every fragment's
            # sum as JSON, and an upstream's broken arguments would crash it.
            arguments = orjson.dumps(tool_input(self._arguments)).decode()
            out = self._block_delta({"type": "input_json_delta", "partial_json": arguments})
        self._block, self._tool, self._arguments = None, None, ""
        stop = {"type": "content_block_stop", "index": self._index}
        return out + event("content_block_stop", stop)

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return event("content_block_delta", data)
