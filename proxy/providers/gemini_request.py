"""OpenAI chat request -> Gemini generateContent request (pure translation), per model.

Per the Gemini API reference (ai.google.dev/api/generate-content) and the guides on
thinking, thought signatures, structured output and function calling:
- Gemini 2.5 and later take full JSON Schema in `responseJsonSchema` and
  `parametersJsonSchema` ($ref, $defs, additionalProperties, oneOf, const...); older
  models take the OpenAPI subset of `responseSchema`/`parameters`, cleaned for them.
- Only Gemini 2.0 takes presence/frequency penalties; later models refuse non-zero
  ones ("Penalty is not enabled"), so they are dropped (and named).
- `reasoning_effort` becomes `thinkingConfig`: `thinkingLevel` on Gemini 3,
  `thinkingBudget` on 2.5 (Gemini 2.0 does not think: dropped).
- A function call's `thoughtSignature` comes back on the OpenAI tool call as
  `extra_content.google.thought_signature` (as on Google's own OpenAI-compatible
  endpoint) and goes back on the `functionCall` part. Gemini 3 refuses a turn's
  function calls without one; calls from elsewhere (another provider answered that turn)
  get Google's documented `skip_thought_signature_validator`.
- Audio and PDF parts go as `inlineData`; a part Gemini cannot take is a 400 naming it.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any

import orjson

from proxy.errors import InvalidRequest
from proxy.providers.parts import audio_payload, file_payload, split_data_url

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
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
)
# What the OpenAPI-subset Schema of older models accepts; anything else is removed.
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
SKIP_SIGNATURE = "skip_thought_signature_validator"
THINKING_LEVELS = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}
# Gemini 3 Pro thinks at LOW or HIGH only.
PRO_LEVELS = {"MINIMAL": "LOW", "LOW": "LOW", "MEDIUM": "HIGH", "HIGH": "HIGH"}
THINKING_BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
PRO_MIN_BUDGET = 128  # 2.5 Pro cannot turn thinking off
_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


def gemini_version(model: str) -> tuple[int, int]:
    match = _VERSION.search(model)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)


def to_gemini_request(
    request: dict[str, Any], model: str = ""
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(the Gemini body, the OpenAI parameters left out)."""
    version = gemini_version(model)
    system, contents = _contents(request["messages"], version)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    dropped = [name for name in UNSUPPORTED if request.get(name) not in (None, False)]
    config = _generation_config(request, model, version, dropped)
    if config:
        body["generationConfig"] = config
    tools = [t for t in request.get("tools") or () if isinstance(t, dict)]
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t, version) for t in tools]}]
    choice = request.get("tool_choice")
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    return body, tuple(dropped)


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


def _generation_config(
    request: dict[str, Any], model: str, version: tuple[int, int], dropped: list[str]
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("seed", "seed"),
    ):
        if request.get(name) is not None:
            config[target] = request[name]
    for name, target in (
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if request.get(name):  # zero means none: nothing to send or report
            if version == (2, 0):
                config[target] = request[name]
            else:
                dropped.append(name)
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = request.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    _response_format(request.get("response_format") or {}, version, config)
    _thinking(request.get("reasoning_effort"), model, version, config, dropped)
    return config


def _response_format(
    response_format: dict[str, Any], version: tuple[int, int], config: dict[str, Any]
) -> None:
    if response_format.get("type") not in ("json_object", "json_schema"):
        return
    config["responseMimeType"] = "application/json"
    schema = (response_format.get("json_schema") or {}).get("schema")
    if schema:
        if version >= (2, 5):
            config["responseJsonSchema"] = schema
        else:
            config["responseSchema"] = clean_schema(schema)


def _thinking(
    effort: Any, model: str, version: tuple[int, int], config: dict[str, Any], dropped: list[str]
) -> None:
    if effort is None:
        return
    if effort not in THINKING_BUDGETS:
        raise InvalidRequest(
            f"reasoning_effort must be one of {', '.join(THINKING_BUDGETS)}",
            param="reasoning_effort",
        )
    if version >= (3, 0):
        level = THINKING_LEVELS[effort]
        config["thinkingConfig"] = {"thinkingLevel": PRO_LEVELS[level] if "pro" in model else level}
    elif version >= (2, 5):
        budget = THINKING_BUDGETS[effort]
        if "pro" in model:
            budget = max(budget, PRO_MIN_BUDGET)
        config["thinkingConfig"] = {"thinkingBudget": budget}
    else:
        dropped.append("reasoning_effort")


def _declaration(tool: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    function = tool.get("function") or {}
    if tool.get("type") != "function" or not function.get("name"):
        raise InvalidRequest("only function tools can be sent to this model", param="tools")
    declaration = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if parameters:
        if version >= (2, 5):
            declaration["parametersJsonSchema"] = parameters
        else:
            declaration["parameters"] = clean_schema(parameters)
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


def _contents(
    messages: list[dict[str, Any]], version: tuple[int, int]
) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for the tool results
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
            continue
        if role == "tool":
            part = _function_response(message, names)
            _append(contents, "user", [part])
            continue
        parts = _parts(message.get("content"), f"messages[{i}].content")
        if role == "assistant":
            parts += _function_calls(message.get("tool_calls") or (), names, version)
        if parts:
            _append(contents, "model" if role == "assistant" else "user", parts)
    return system, contents


def _function_calls(
    calls: Any, names: dict[str, str], version: tuple[int, int]
) -> list[dict[str, Any]]:
    parts = []
    for call in calls:
        function = call.get("function") or {}
        names[call.get("id", "")] = function.get("name", "")
        part: dict[str, Any] = {
            "functionCall": {
                "name": function.get("name", ""),
                "args": _arguments(function.get("arguments")),
            }
        }
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    if parts and version >= (3, 0) and "thoughtSignature" not in parts[0]:
        # Gemini 3 wants the turn's first call signed; these calls were never Gemini's.
        parts[0]["thoughtSignature"] = SKIP_SIGNATURE
    return parts


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    # Gemini wants turns to alternate: consecutive turns of one role become one.
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _parts(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content or ()):
        where = f"{param}[{j}]"
        kind = part.get("type")
        if kind in ("text", "refusal"):
            if part.get(kind):
                parts.append({"text": part[kind]})
        elif kind == "image_url":
            parts.append(_image(part["image_url"], where))
        elif kind == "input_audio":
            mime, data = audio_payload(part["input_audio"], where)
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        elif kind == "file":
            mime, data = file_payload(part["file"], where)
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        else:
            raise InvalidRequest(
                f"{where}: content parts of type {kind!r} are not supported by this model's "
                "provider",
                param=where,
            )
    return parts


def _image(image: dict[str, Any], param: str) -> dict[str, Any]:
    url = str(image.get("url", ""))
    if url.startswith("data:"):
        split = split_data_url(url)
        if split is None or not split[1]:
            raise InvalidRequest("image data URLs must be base64", param=param)
        return {"inlineData": {"mimeType": split[0], "data": split[1]}}
    if url.startswith(("http://", "https://")):
        mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise InvalidRequest("image_url must be a data: or http(s) URL", param=param)


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
