"""Anthropic Message -> OpenAI chat completion: a pure translation, shared with the stream.

Text blocks become `content`, `tool_use` blocks become `tool_calls`. Thinking blocks
become `reasoning_content` (their text) and `thinking_blocks` (the blocks themselves,
signatures included), which a client sends back on the assistant message of a tool loop
for Claude to check. The forced call of the structured-output tool becomes the content.
Server-tool blocks have no OpenAI counterpart and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from proxy.errors import UpstreamProtocolError
from proxy.estimate import estimate_tokens
from proxy.providers.anthropic_options import JSON_TOOL
from proxy.providers.base import count
from proxy.schema import ChatCompletion, Message, ToolCall, Usage

# Anthropic `stop_reason` -> OpenAI `finish_reason`. `pause_turn` ends a turn the client may
# continue, which OpenAI can only call "stop"; a context-window stop is a length stop.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def to_openai_usage(usage: Mapping[str, Any], thinking_tokens: int = 0) -> Usage:
    """Anthropic counts cached input apart from `input_tokens`; OpenAI's prompt includes it.
    Thinking is billed inside `output_tokens`; the API does not count it apart, so its
    share (`reasoning_tokens`) comes from the thinking text the answer carried."""
    cache_read = _count(usage, "cache_read_input_tokens")
    cache_write = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + cache_read + cache_write
    completion = _count(usage, "output_tokens")
    result: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": cache_read,
            "cache_creation_tokens": cache_write,
        },
    }
    creation = usage.get("cache_creation")
    if isinstance(creation, dict):  # 5-minute and 1-hour writes are priced differently
        result["prompt_tokens_details"]["cache_write_1h_tokens"] = _count(
            creation, "ephemeral_1h_input_tokens"
        )
    if thinking_tokens:
        result["completion_tokens_details"] = {"reasoning_tokens": min(thinking_tokens, completion)}
    tier = usage.get("service_tier")
    if isinstance(tier, str):
        result["service_tier"] = tier
    return result


def _count(usage: Mapping[str, Any], name: str) -> int:
    return count(usage.get(name))


def completion_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}"


def tool_call(block: Mapping[str, Any]) -> ToolCall:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": str(block.get("id")),
        "type": "function",
        "function": {"name": str(block.get("name")), "arguments": arguments},
    }


def from_anthropic_message(data: Mapping[str, Any], created: int) -> ChatCompletion:
    content = data.get("content")
    if data.get("type") != "message" or not isinstance(content, list):
        raise UpstreamProtocolError("upstream response is not a Message with a content array")
    blocks = [b for b in content if isinstance(b, dict)]
    texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
    uses = [b for b in blocks if b.get("type") == "tool_use"]
    answer = next((b for b in uses if b.get("name") == JSON_TOOL), None)
    calls = [tool_call(b) for b in uses if b is not answer]
    if answer is not None:  # the structured answer, forced through a tool
        texts.append(orjson.dumps(answer.get("input") or {}).decode())
    # OpenAI sends null content when the answer is only tool calls.
    message: Message = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    thinking = [b for b in blocks if b.get("type") in ("thinking", "redacted_thinking")]
    reasoning = "".join(str(b.get("thinking") or "") for b in thinking)
    if thinking:
        message["reasoning_content"] = reasoning
        message["thinking_blocks"] = thinking
    stop_reason = data.get("stop_reason")
    if answer is not None and stop_reason == "tool_use":
        stop_reason = "end_turn"
    completion: ChatCompletion = {
        "id": completion_id(data.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": str(data.get("model")),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(stop_reason),
            }
        ],
    }
    usage = data.get("usage")
    if isinstance(usage, dict):
        completion["usage"] = to_openai_usage(usage, estimate_tokens(reasoning))
    return completion
