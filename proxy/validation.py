"""Validation of a client's chat-completions and embeddings request bodies.

It checks what the gateway and its adapters rely on (every field they read, at every
depth: content parts, tool calls, tools, response formats), so a client learns about a
mistyped field from us, with `param`, rather than from a 500 or from whichever upstream
happened to answer. Fields the gateway never reads pass through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from proxy.errors import InvalidRequest
from proxy.schema import ChatRequest, EmbeddingsRequest

_NUMBER_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT_MINIMUMS = {
    "max_tokens": 1,
    "max_completion_tokens": 1,
    "n": 1,
    "top_logprobs": 0,
    "seed": None,
}
# Beyond this nothing is a sensible count, and SQLite and most JSON parsers stop at 2**63.
MAX_INT = 2**53
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})


def parse_chat_request(body: bytes) -> ChatRequest:
    """Parse and validate a chat-completions body; raise InvalidRequest naming the field."""
    return check_chat_request(parse_json_object(body))


def check_chat_request(data: dict[str, Any]) -> ChatRequest:
    """Validate a chat-completions request: a client's, or one translated from another API."""
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        check_message(message, f"messages[{i}]")
    check_types(data)
    check_tools(data)
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


def check_message(message: Any, param: str) -> None:
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
            check_part(part, f"{param}.content[{j}]")
    for name in ("name", "tool_call_id"):
        if name in message and not isinstance(message[name], str):
            raise InvalidRequest(f"{param}.{name} must be a string", param=f"{param}.{name}")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidRequest(
            f"{param}.tool_call_id is required for a tool message", param=f"{param}.tool_call_id"
        )
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise InvalidRequest(
                f"{param}.tool_calls must be an array", param=f"{param}.tool_calls"
            )
        for j, call in enumerate(calls):
            check_tool_call(call, f"{param}.tool_calls[{j}]")


def check_part(part: Any, param: str) -> None:
    """A content part: its `type`, and the field that type names, of the right shape."""
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise InvalidRequest(f"{param} must be an object with a 'type'", param=param)
    kind = part["type"]
    if kind in ("text", "refusal"):
        _require(part, kind, str, param, "a string")
    elif kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict):
            raise InvalidRequest(
                f"{param}.image_url must be an object with a 'url'", param=f"{param}.image_url"
            )
        _require(image, "url", str, f"{param}.image_url", "a string")
        if image.get("detail") not in (None, "auto", "low", "high"):
            raise InvalidRequest(
                f"{param}.image_url.detail must be auto, low or high",
                param=f"{param}.image_url.detail",
            )
    elif kind == "input_audio":
        audio = _require(part, "input_audio", dict, param, "an object")
        _require(audio, "data", str, f"{param}.input_audio", "a base64 string")
        _require(audio, "format", str, f"{param}.input_audio", "a string")
    elif kind == "file":
        file = _require(part, "file", dict, param, "an object")
        if not any(isinstance(file.get(k), str) for k in ("file_data", "file_id")):
            raise InvalidRequest(
                f"{param}.file needs 'file_data' or 'file_id' (a string)", param=f"{param}.file"
            )


def check_tool_call(call: Any, param: str) -> None:
    if not isinstance(call, dict):
        raise InvalidRequest(f"{param} must be an object", param=param)
    if "id" in call and not isinstance(call["id"], str):
        raise InvalidRequest(f"{param}.id must be a string", param=f"{param}.id")
    function = _require(call, "function", dict, param, "an object")
    _require(function, "name", str, f"{param}.function", "a string")
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        raise InvalidRequest(
            f"{param}.function.arguments must be a JSON string",
            param=f"{param}.function.arguments",
        )


def check_tools(data: Mapping[str, Any]) -> None:
    for i, tool in enumerate(data.get("tools") or ()):
        param = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"{param} must be an object with a 'type'", param=param)
        if tool["type"] == "function":
            function = _require(tool, "function", dict, param, "an object")
            name = _require(function, "name", str, f"{param}.function", "a string")
            if not name:
                raise InvalidRequest(
                    f"{param}.function.name must not be empty", param=f"{param}.function.name"
                )
            for field, kind, what in (
                ("description", str, "a string"),
                ("parameters", dict, "a JSON Schema object"),
            ):
                if function.get(field) is not None:
                    _require(function, field, kind, f"{param}.function", what)
    choice = data.get("tool_choice")
    if choice is not None and not (isinstance(choice, str) and choice in _TOOL_CHOICES):
        if not isinstance(choice, dict):
            raise InvalidRequest(
                "'tool_choice' must be none, auto, required or an object", param="tool_choice"
            )
        if choice.get("type") == "function":
            function = _require(choice, "function", dict, "tool_choice", "an object")
            _require(function, "name", str, "tool_choice.function", "a string")
    check_response_format(data.get("response_format"))


def check_response_format(value: Any) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind not in _RESPONSE_FORMATS:
        raise InvalidRequest(
            "'response_format' must be an object whose type is text, json_object or json_schema",
            param="response_format",
        )
    if kind == "json_schema":
        spec = _require(value, "json_schema", dict, "response_format", "an object")
        _require(spec, "name", str, "response_format.json_schema", "a string")
        if spec.get("schema") is not None:
            _require(spec, "schema", dict, "response_format.json_schema", "a JSON Schema object")


def check_types(data: dict[str, Any]) -> None:
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
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise InvalidRequest(f"'{name}' is out of range", param=name)
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


def _require(fields: Mapping[str, Any], name: str, kind: type, param: str, what: str) -> Any:
    value = fields.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRequest(f"{param}.{name} must be {what}", param=f"{param}.{name}")
    return value


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
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_INT
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
