"""Anthropic Messages stream events -> OpenAI chat-completion chunks, one event at a time.

The documented flow is `message_start`, then per content block `content_block_start`,
`content_block_delta`s and `content_block_stop`, then `message_delta` (stop reason, output
usage) and `message_stop`; `ping` may come anywhere and `error` ends a failed stream.
Unknown event and delta types are skipped, as Anthropic's versioning policy asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from proxy.errors import UpstreamProtocolError
from proxy.estimate import estimate_tokens
from proxy.providers.anthropic_options import JSON_TOOL
from proxy.providers.anthropic_response import (
    completion_id,
    finish_reason,
    to_openai_usage,
)
from proxy.providers.base import load_object
from proxy.schema import ChatCompletionChunk, Delta, Usage
from proxy.transport import SSEEvent


class AnthropicStreamTranslator:
    __slots__ = (
        "_answer_block",
        "_created",
        "_id",
        "_model",
        "_no_arguments",
        "_thinking",
        "_thinking_text",
        "_tool_index",
        "_usage",
        "finished",
        "usage",
    )

    def __init__(self, created: int) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self._created = created
        self._id = completion_id("")
        self._model = ""
        # Anthropic numbers every content block; OpenAI numbers tool calls only, from 0.
        self._tool_index: dict[Any, int] = {}
        self._no_arguments: set[Any] = set()  # tool blocks with no argument text so far
        self._usage: dict[str, Any] = {}
        self._answer_block: Any = None  # the structured-output tool's block, if any
        self._thinking: dict[Any, dict[str, Any]] = {}  # thinking blocks being received
        self._thinking_text = 0  # their tokens, estimated: the reasoning share of output

    def translate(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        data = load_object(event.data)
        match data.get("type"):
            case "message_start":
                return self._message_start(_object(data, "message"))
            case "content_block_start":
                return self._block_start(data.get("index"), _object(data, "content_block"))
            case "content_block_delta":
                return self._block_delta(data.get("index"), _object(data, "delta"))
            case "content_block_stop":
                return self._block_stop(data.get("index"))
            case "message_delta":
                return self._message_delta(data)
            case "message_stop":
                return self._message_stop()
            case "error":
                raise stream_error(data.get("error"))
            case _:  # ping, and event types added later
                return []

    def _message_start(self, message: Mapping[str, Any]) -> list[ChatCompletionChunk]:
        self._id = completion_id(message.get("id"))
        self._model = str(message.get("model", ""))
        self._merge_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: Any, block: Mapping[str, Any]) -> list[ChatCompletionChunk]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind in ("thinking", "redacted_thinking"):
            self._thinking[index] = dict(block)
            return []
        if kind == "tool_use" and block.get("name") == JSON_TOOL:
            self._answer_block = index  # its arguments are the answer's content
            return []
        if kind != "tool_use":
            return []  # server tools: nothing OpenAI can show
        position = self._tool_index[index] = len(self._tool_index)
        # The documented start carries `input: {}` and the arguments follow as deltas.
        start = block.get("input")
        if not start:
            self._no_arguments.add(index)
        call = {
            "index": position,
            "id": block.get("id"),
            "type": "function",
            "function": {
                "name": block.get("name"),
                "arguments": orjson.dumps(start).decode() if start else "",
            },
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, index: Any, delta: Mapping[str, Any]) -> list[ChatCompletionChunk]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if index == self._answer_block and kind == "input_json_delta":
            fragment = delta.get("partial_json")
            return [self._chunk({"content": fragment})] if fragment else []
        thinking = self._thinking.get(index)
        if thinking is not None:
            return self._thinking_delta(thinking, delta)
        # Server tool blocks stream `input_json_delta` too; only client tools are in the map.
        if kind == "input_json_delta" and index in self._tool_index and delta.get("partial_json"):
            self._no_arguments.discard(index)
            return [self._arguments(index, delta["partial_json"])]
        return []  # thinking_delta, signature_delta, citations_delta

    def _thinking_delta(
        self, block: dict[str, Any], delta: Mapping[str, Any]
    ) -> list[ChatCompletionChunk]:
        kind = delta.get("type")
        if kind == "thinking_delta" and delta.get("thinking"):
            text = str(delta["thinking"])
            block["thinking"] = str(block.get("thinking") or "") + text
            self._thinking_text += estimate_tokens(text)
            return [self._chunk({"reasoning_content": text})]
        if kind == "signature_delta":
            block["signature"] = str(block.get("signature") or "") + str(delta.get("signature"))
        return []

    def _block_stop(self, index: Any) -> list[ChatCompletionChunk]:
        thinking = self._thinking.pop(index, None)
        if thinking is not None:
            # The whole block, signature included, for the client to send back.
            return [self._chunk({"thinking_blocks": [thinking]})]
        # A tool without arguments streams no JSON at all; the plain response says "{}".
        if index in self._no_arguments:
            self._no_arguments.discard(index)
            return [self._arguments(index, "{}")]
        return []

    def _arguments(self, index: Any, fragment: str) -> ChatCompletionChunk:
        call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
        return self._chunk({"tool_calls": [call]})

    def _message_delta(self, data: Mapping[str, Any]) -> list[ChatCompletionChunk]:
        self._merge_usage(data.get("usage"))
        stop_reason = _object(data, "delta").get("stop_reason")
        if stop_reason is None:
            return []
        if self._answer_block is not None and stop_reason == "tool_use":
            stop_reason = "end_turn"  # the forced structured answer is the whole answer
        return [self._chunk({}, finish_reason(stop_reason))]

    def _message_stop(self) -> list[ChatCompletionChunk]:
        self.finished = True
        self.usage = to_openai_usage(self._usage, self._thinking_text)
        return [
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": self.usage,
            }
        ]

    def _merge_usage(self, usage: Any) -> None:
        # message_start has the input counts, message_delta cumulative output (and lately
        # input) counts: later non-null values win.
        if isinstance(usage, dict):
            self._usage.update((k, v) for k, v in usage.items() if v is not None)
            # Known so far: the bill of a stream whose client leaves before its end.
            self.usage = to_openai_usage(self._usage, self._thinking_text)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": cast(Delta, delta), "finish_reason": finish}],
        }


def stream_error(error: Any) -> UpstreamProtocolError:
    if isinstance(error, dict):
        error = f"{error.get('type')}: {error.get('message')}"
    return UpstreamProtocolError(f"upstream sent an error event: {error}")


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise UpstreamProtocolError(f"stream event {data.get('type')} has no '{name}' object")
    return value
