"""OpenAI chat-completions wire shapes, and validation of a client's request body.

Validation checks only what the gateway relies on, and the types of the common fields, so
a client learns about a mistyped field from us (with `param`) rather than from whichever
upstream happened to answer. Everything else passes through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

import orjson

from proxy.errors import InvalidRequest


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: str
    function: FunctionCall


class Message(TypedDict, total=False):
    role: str
    content: Any  # a string, a list of content parts, or None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str


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


_NUMBER_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT_MINIMUMS = {
    "max_tokens": 1,
    "max_completion_tokens": 1,
    "n": 1,
    "top_logprobs": 0,
    "seed": None,
}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def parse_chat_request(body: bytes) -> ChatRequest:
    """Parse and validate a chat-completions body; raise InvalidRequest naming the field."""
    data = parse_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        _check_message(message, i)
    _check_types(data)
    return data  # type: ignore[return-value]


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _check_message(message: Any, i: int) -> None:
    param = f"messages[{i}]"
    if not isinstance(message, dict):
        raise InvalidRequest(f"{param} must be an object", param=param)
    role = message.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"{param}.role must be one of {', '.join(sorted(_ROLES))}", param=f"{param}.role"
        )
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise InvalidRequest(
            f"{param}.content must be a string or an array of content parts",
            param=f"{param}.content",
        )
    if content is None and role in ("system", "developer", "user"):
        raise InvalidRequest(f"{param}.content is required", param=f"{param}.content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise InvalidRequest(
                    f"{param}.content[{j}] must be an object with a 'type'",
                    param=f"{param}.content[{j}]",
                )


def _check_types(data: dict[str, Any]) -> None:
    if "stream" in data and not isinstance(data["stream"], bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    for name in _NUMBER_FIELDS:
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidRequest(f"'{name}' must be a number", param=name)
    for name, minimum in _INT_MINIMUMS.items():
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidRequest(f"'{name}' must be an integer", param=name)
        if minimum is not None and isinstance(value, int) and value < minimum:
            raise InvalidRequest(f"'{name}' must be at least {minimum}", param=name)
    stop = data.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or an array of strings", param="stop")
    for name in ("tools", "functions"):
        if name in data and not isinstance(data[name], list):
            raise InvalidRequest(f"'{name}' must be an array", param=name)
    if "user" in data and not isinstance(data["user"], str):
        raise InvalidRequest("'user' must be a string", param="user")


def wants_usage(request: ChatRequest) -> bool:
    options = request.get("stream_options") or {}
    return bool(options.get("include_usage"))


def max_output_tokens(request: Mapping[str, Any]) -> int | None:
    value = request.get("max_completion_tokens") or request.get("max_tokens")
    return value if isinstance(value, int) else None


class EmbeddingsRequest(TypedDict, total=False):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: str
    dimensions: int
    user: str


def parse_embeddings_request(body: bytes) -> EmbeddingsRequest:
    data = parse_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    if not _valid_embedding_input(data.get("input")):
        raise InvalidRequest(
            "'input' must be a non-empty string, array of strings, or array of token arrays",
            param="input",
        )
    encoding = data.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
        )
    dimensions = data.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise InvalidRequest("'dimensions' must be a positive integer", param="dimensions")
    if "user" in data and not isinstance(data["user"], str):
        raise InvalidRequest("'user' must be a string", param="user")
    return data  # type: ignore[return-value]


def _valid_embedding_input(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(v, str) and v for v in value):
        return True
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return True
    return all(
        isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
        for v in value
    )
