"""An Anthropic Messages request -> the internal chat request (for routes that are not Claude).

The mapping follows the Messages API reference (platform.claude.com/docs/en/api/messages)
and the anthropic SDK's `MessageCreateParams`:

- `system` (a string or text blocks) becomes the first message; `max_tokens` the output
  cap; `stop_sequences` `stop`; `metadata.user_id` `user`.
- Blocks: text and images stay parts (cache_control kept); a PDF `document` becomes a
  `file` part, a plain-text one text; `tool_use` becomes a tool call, `tool_result` a
  tool message, placed before the rest of its user turn as chat wants; signed thinking
  blocks ride along as `thinking_blocks` (unsigned ones, which only other providers
  produce, are left out).
- `thinking` and `output_config.effort` become `reasoning_effort` (the budget bucketed as
  the gateway's Claude adapter buckets it the other way); `output_config.format` becomes a
  `json_schema` response format; `tool_choice` maps one to one.

What only Claude can do (server tools such as web search, file sources, search results)
is marked `native_only`: such a request goes to Claude routes and skips the rest. `top_k`,
which chat has no field for, is left out on other routes and named as dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from proxy.dialects.translation import Translated, check_translation
from proxy.errors import InvalidRequest
from proxy.validation import MAX_INT

# The budget at or under which a thinking request counts as each effort.
EFFORT_BUDGETS = (
    (1024, "minimal"),
    (2048, "low"),
    (8192, "medium"),
    (16384, "high"),
)
_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
_ROLES = frozenset({"user", "assistant"})


def to_chat_request(body: Mapping[str, Any], *, counting: bool = False) -> Translated:
    """A validated Messages body as a chat request; InvalidRequest names the bad field.
    `counting`: a count_tokens body, which has no max_tokens."""
    out = Translated("Claude")
    chat = out.chat
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string)", param="model")
    chat["model"] = model
    if not counting:
        chat["max_completion_tokens"] = _int(body, "max_tokens", minimum=1, required=True)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty array", param="messages")
    chat["messages"] = _system(body.get("system"))
    for i, message in enumerate(messages):
        chat["messages"] += _messages(message, f"messages.{i}", out)
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            raise InvalidRequest("stream: must be a boolean", param="stream")
        chat["stream"] = body["stream"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = _number(body, name)
    if body.get("top_k") is not None:
        _int(body, "top_k", minimum=0)
        out.dropped.append("top_k")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest("stop_sequences: must be an array of strings", param="stop")
        if stops:
            chat["stop"] = stops
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidRequest("metadata: must be an object", param="metadata")
        if isinstance(metadata.get("user_id"), str):
            chat["user"] = metadata["user_id"]
    _tools(body, out)
    _reasoning(body, chat)
    _format(body.get("output_config"), chat)
    check_translation(out)
    return out


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise InvalidRequest("system: must be a string or an array of text blocks", param="system")
    parts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"system.{i}: must be a text block", param=f"system.{i}")
        parts.append(_text_part(block, f"system.{i}"))
    return [{"role": "system", "content": parts}]


def _messages(message: Any, param: str, out: Translated) -> list[dict[str, Any]]:
    """One Messages turn as chat messages: tool results first, then what the turn says."""
    if not isinstance(message, dict):
        raise InvalidRequest(f"{param}: must be an object", param=param)
    role = message.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise InvalidRequest(f"{param}.role: must be 'user' or 'assistant'", param=f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{param}.content: must be a string or an array of content blocks",
            param=f"{param}.content",
        )
    if role == "assistant":
        return [_assistant(content, param, out)]
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        where = f"{param}.content.{j}"
        kind = _kind(block, where)
        if kind == "tool_result":
            results += _tool_result(block, where, out)
        else:
            parts += _user_part(block, kind, where, out)
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _assistant(blocks: list[Any], param: str, out: Translated) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{param}.content.{j}"
        kind = _kind(block, where)
        if kind == "text":
            texts.append(_text_part(block, where))
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind == "thinking":
            _string(block, "thinking", where)
            if block.get("signature"):  # signed by Claude: it checks it on the way back
                thinking.append(block)
        elif kind == "redacted_thinking":
            _string(block, "data", where)
            thinking.append(block)
        else:
            out.needs_native(f"{where}: '{kind}' blocks")
    if texts:
        message["content"] = texts
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
        text = "".join(str(b.get("thinking") or "") for b in thinking)
        if text:
            message["reasoning_content"] = text
    return message


def _user_part(block: dict[str, Any], kind: str, where: str, out: Translated) -> list[Any]:
    if kind == "text":
        return [_text_part(block, where)]
    if kind == "image":
        part = _image_part(block, where, out)
    elif kind == "document":
        return _document_parts(block, where, out)
    else:
        out.needs_native(f"{where}: '{kind}' blocks")
        return []
    return [part] if part is not None else []


def _text_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": _string(block, "text", where)}
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _image_part(block: dict[str, Any], where: str, out: Translated) -> dict[str, Any] | None:
    source = _source(block, where)
    kind = source.get("type")
    if kind == "base64":
        media_type = _string(source, "media_type", f"{where}.source")
        data = _string(source, "data", f"{where}.source")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = _string(source, "url", f"{where}.source")
    else:
        out.needs_native(f"{where}: image sources of type '{kind}'")
        return None
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _document_parts(block: dict[str, Any], where: str, out: Translated) -> list[Any]:
    source = _source(block, where)
    kind = source.get("type")
    if kind == "base64":
        media_type = _string(source, "media_type", f"{where}.source")
        data = _string(source, "data", f"{where}.source")
        file = {"file_data": f"data:{media_type};base64,{data}"}
        if isinstance(block.get("title"), str):
            file["filename"] = block["title"]
        return [{"type": "file", "file": file}]
    if kind == "text":
        return [{"type": "text", "text": _string(source, "data", f"{where}.source")}]
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise InvalidRequest(f"{where}.source.content: must be a string or blocks", param=where)
        parts: list[Any] = []
        for k, inner in enumerate(content):
            inner_where = f"{where}.source.content.{k}"
            parts += _user_part(inner, _kind(inner, inner_where), inner_where, out)
        return parts
    out.needs_native(f"{where}: document sources of type '{kind}'")
    return []


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"{where}.input: must be an object", param=f"{where}.input")
    return {
        "id": _string(block, "id", where),
        "type": "function",
        "function": {"name": _string(block, "name", where), "arguments": _json(arguments)},
    }


def _tool_result(block: dict[str, Any], where: str, out: Translated) -> list[dict[str, Any]]:
    """A tool message; images a tool returned follow it as a user turn (chat tool
    messages carry text only)."""
    call_id = _string(block, "tool_use_id", where)
    content = block.get("content", "")
    texts: list[str] = []
    media: list[Any] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, inner in enumerate(content):
            inner_where = f"{where}.content.{k}"
            kind = _kind(inner, inner_where)
            if kind == "text":
                texts.append(_string(inner, "text", inner_where))
            else:
                media += _user_part(inner, kind, inner_where, out)
    else:
        raise InvalidRequest(
            f"{where}.content: must be a string or an array of blocks", param=where
        )
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}"
    messages: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": call_id, "content": text}]
    if media:
        messages.append({"role": "user", "content": media})
    return messages


def _tools(body: Mapping[str, Any], out: Translated) -> None:
    tools = body.get("tools")
    chat = out.chat
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools: must be an array", param="tools")
        functions = []
        for i, tool in enumerate(tools):
            where = f"tools.{i}"
            if not isinstance(tool, dict):
                raise InvalidRequest(f"{where}: must be an object", param=where)
            if tool.get("type") not in (None, "custom"):
                out.needs_native(f"{where}: the server tool '{tool.get('type')}'")
                continue
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise InvalidRequest(
                    f"{where}.input_schema: Field required", param=f"{where}.input_schema"
                )
            function: dict[str, Any] = {"name": _string(tool, "name", where), "parameters": schema}
            if isinstance(tool.get("description"), str):
                function["description"] = tool["description"]
            if isinstance(tool.get("strict"), bool):
                function["strict"] = tool["strict"]
            functions.append({"type": "function", "function": function})
        if functions:
            chat["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: must be an object with a 'type'", param="tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool":
        name = _string(choice, "name", "tool_choice")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise InvalidRequest(
            "tool_choice.type: must be auto, any, tool or none", param="tool_choice"
        )
    if choice.get("disable_parallel_tool_use") is True and "tools" in chat:
        chat["parallel_tool_calls"] = False
    if "tools" not in chat:
        chat.pop("tool_choice")  # a choice among server tools only: nothing to say here


def _reasoning(body: Mapping[str, Any], chat: dict[str, Any]) -> None:
    thinking = body.get("thinking")
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort is not None and (not isinstance(effort, str) or effort not in _EFFORTS):
        raise InvalidRequest(
            "output_config.effort: must be low, medium, high, xhigh or max",
            param="output_config.effort",
        )
    if thinking is None or (isinstance(thinking, dict) and thinking.get("type") == "disabled"):
        if effort is not None and thinking is None:
            chat["reasoning_effort"] = effort
        return
    if not isinstance(thinking, dict):
        raise InvalidRequest("thinking: must be an object", param="thinking")
    kind = thinking.get("type")
    if kind == "adaptive":
        chat["reasoning_effort"] = effort or "medium"
    elif kind == "enabled":
        budget = _int(thinking, "budget_tokens", minimum=1024, required=True, where="thinking")
        chat["reasoning_effort"] = next((e for b, e in EFFORT_BUDGETS if budget <= b), "xhigh")
    else:
        raise InvalidRequest(
            "thinking.type: must be enabled, adaptive or disabled", param="thinking"
        )


def _format(config: Any, chat: dict[str, Any]) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise InvalidRequest("output_config: must be an object", param="output_config")
    spec = config.get("format")
    if spec is None:
        return
    if not isinstance(spec, dict) or spec.get("type") != "json_schema":
        raise InvalidRequest(
            "output_config.format.type: must be 'json_schema'", param="output_config.format"
        )
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(
            "output_config.format.schema: Field required", param="output_config.format.schema"
        )
    chat["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def _kind(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequest(f"{where}: must be a content block with a 'type'", param=where)
    return str(block["type"])


def _source(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{where}.source: Field required", param=f"{where}.source")
    return source


def _string(fields: Mapping[str, Any], name: str, where: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}.{name}: must be a string", param=f"{where}.{name}")
    return value


def _number(fields: Mapping[str, Any], name: str) -> float:
    value = fields.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{name}: must be a number", param=name)
    return value


def _int(
    fields: Mapping[str, Any],
    name: str,
    *,
    minimum: int,
    required: bool = False,
    where: str = "",
) -> int:
    param = f"{where}.{name}" if where else name
    value = fields.get(name)
    if value is None and not required:
        return minimum
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{param}: must be an integer", param=param)
    if not minimum <= value <= MAX_INT:
        raise InvalidRequest(f"{param}: must be at least {minimum}", param=param)
    return value


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
