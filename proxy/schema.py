"""OpenAI chat-completions and embeddings wire shapes (`proxy.validation` checks them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]
    completion_tokens_details: dict[str, int]
    service_tier: str  # the tier the provider says it served (priced accordingly)


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: str
    function: FunctionCall
    # Provider data that must come back with the call: Gemini's thought signature, as
    # Google's own OpenAI-compatible endpoint carries it ({"google": {"thought_signature"}}).
    extra_content: NotRequired[dict[str, Any]]


class Message(TypedDict, total=False):
    role: str
    content: Any  # a string, a list of content parts, or None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str
    # The model's reasoning, where the provider returns it (DeepSeek, Mistral, Gemini,
    # Claude), and Claude's thinking blocks, to be sent back as they came.
    reasoning_content: str
    thinking_blocks: list[dict[str, Any]]


class ChatRequest(TypedDict, total=False):
    model: str
    messages: list[Message]
    stream: bool
    stream_options: dict[str, Any]
    max_tokens: int
    max_completion_tokens: int
    n: int
    temperature: float
    top_p: float
    stop: str | list[str]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    user: str


class Choice(TypedDict):
    index: int
    message: Message
    finish_reason: str | None
    logprobs: NotRequired[Any]


class ChatCompletion(TypedDict):
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: NotRequired[Usage]


class ToolCallDelta(TypedDict, total=False):
    """One fragment of a streamed tool call: `index` always, id/type/name on the first."""

    index: int
    id: str
    type: str
    function: dict[str, str]


class Delta(TypedDict, total=False):
    role: str
    content: str | None
    reasoning_content: str | None
    thinking_blocks: list[dict[str, Any]]
    tool_calls: list[ToolCallDelta]
    refusal: str | None


class ChunkChoice(TypedDict):
    index: int
    delta: Delta
    finish_reason: str | None
    logprobs: NotRequired[Any]


class ChatCompletionChunk(TypedDict):
    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: NotRequired[Usage | None]


def wants_usage(request: ChatRequest) -> bool:
    options = request.get("stream_options") or {}
    return bool(options.get("include_usage"))


def max_output_tokens(request: Mapping[str, Any]) -> int | None:
    """The client's output cap. Given both fields, the smaller one: it is what the gateway
    reserves for and what every adapter sends, whichever field the provider reads."""
    caps = [
        value
        for value in (request.get("max_completion_tokens"), request.get("max_tokens"))
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    return min(caps) if caps else None


class EmbeddingsRequest(TypedDict, total=False):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: str
    dimensions: int
    user: str
