"""OpenAI chat request -> Gemini generateContent request (pure translation)."""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from proxy.errors import InvalidRequest

# OpenAI parameters with no Gemini counterpart: left out and reported.
UNSUPPORTED = (
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "parallel_tool_calls",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "reasoning_effort",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
)
# What Gemini's OpenAPI-subset Schema accepts; anything else is removed, not sent.
SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "anyOf",
        "propertyOrdering",
        "minLength",
        "maxLength",
        "pattern",
        "minProperties",
        "maxProperties",
        "example",
    }
)
_CONFIG = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("n", "candidateCount"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def to_gemini_request(request: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(the Gemini body, the OpenAI parameters left out)."""
    system, contents = _contents(request["messages"])
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    tools = [t for t in request.get("tools") or () if isinstance(t, dict)]
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
    choice = request.get("tool_choice")
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    dropped = tuple(name for name in UNSUPPORTED if request.get(name) not in (None, False))
    return body, dropped


def clean_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in SCHEMA_FIELDS:
            continue
        if key == "properties" and isinstance(value, dict):
            cleaned[key] = {name: clean_schema(v) for name, v in value.items()}
        elif key in ("items", "anyOf"):
            cleaned[key] = clean_schema(value)
        elif key == "type" and isinstance(value, list):
            # JSON Schema's ["string", "null"] is Gemini's type + nullable.
            kinds = [k for k in value if k != "null"]
            cleaned["type"] = kinds[0] if kinds else "string"
            if "null" in value:
                cleaned["nullable"] = True
        else:
            cleaned[key] = value
    return cleaned


def _generation_config(request: dict[str, Any]) -> dict[str, Any]:
    config = {target: request[name] for name, target in _CONFIG if request.get(name) is not None}
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = request.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = request.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = clean_schema(schema)
    return config


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    if tool.get("type") != "function" or not function.get("name"):
        raise InvalidRequest("only function tools can be sent to this model", param="tools")
    declaration = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parameters"] = clean_schema(function["parameters"])
    return declaration


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise InvalidRequest("tool_choice names no function", param="tool_choice")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if choice not in modes:
        raise InvalidRequest(
            "tool_choice must be auto, none, required or a function", param="tool_choice"
        )
    return {"mode": modes[choice]}


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for the tool results
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
            continue
        if role == "tool":
            part = _function_response(message, names)
            _append(contents, "user", [part])
            continue
        parts = _parts(message.get("content"))
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                names[call.get("id", "")] = function.get("name", "")
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name", ""),
                            "args": _arguments(function.get("arguments")),
                        }
                    }
                )
        if parts:
            _append(contents, "model" if role == "assistant" else "user", parts)
    return system, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    # Gemini wants turns to alternate: consecutive turns of one role become one.
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or ():
        if part.get("type") == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            parts.append(_image(part.get("image_url") or {}))
    return parts


def _image(image: dict[str, Any]) -> dict[str, Any]:
    url = str(image.get("url", ""))
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";")[0] or "image/png"
        if ";base64" not in header or not data:
            raise InvalidRequest("image data URLs must be base64", param="messages")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://")):
        mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise InvalidRequest("image_url must be a data: or http(s) URL", param="messages")


def _function_response(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    text = _text(message.get("content"))
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    name = names.get(message.get("tool_call_id", "")) or message.get("name") or "function"
    return {"functionResponse": {"name": name, "response": response}}


def _arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "tool call arguments must be a JSON object", param="messages"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param="messages")
    return parsed


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if isinstance(p, dict))
