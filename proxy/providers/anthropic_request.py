"""OpenAI chat request -> Anthropic Messages API request: a pure translation.

The Messages API keeps the system prompt out of `messages`, wants `max_tokens` on every
request, carries tool calls and tool results as content blocks, and merges consecutive
turns of one role. Parameters it has no equivalent for are left out and named, so the
gateway can tell the client (`x-gateway-dropped-params`) instead of failing the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NotRequired, TypedDict, cast

import orjson

from proxy.errors import InvalidRequest
from proxy.providers.anthropic_options import apply_options
from proxy.providers.parts import file_payload
from proxy.schema import ChatRequest, Message, ToolCall, max_output_tokens


class TextBlock(TypedDict):
    type: str  # "text"
    text: str
    cache_control: NotRequired[dict[str, Any]]


class ImageBlock(TypedDict):
    type: str  # "image"
    source: dict[str, str]
    cache_control: NotRequired[dict[str, Any]]


class ToolUseBlock(TypedDict):
    type: str  # "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(TypedDict):
    type: str  # "tool_result"
    tool_use_id: str
    content: NotRequired[str | list[TextBlock | ImageBlock]]


ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock


class AnthropicMessage(TypedDict):
    role: str  # "user" or "assistant"
    content: list[ContentBlock]


class AnthropicTool(TypedDict):
    name: str
    input_schema: dict[str, Any]
    description: NotRequired[str]
    cache_control: NotRequired[dict[str, Any]]


class MessagesRequest(TypedDict, total=False):
    model: str
    max_tokens: int
    messages: list[AnthropicMessage]
    system: list[TextBlock]
    stop_sequences: list[str]
    temperature: float
    top_p: float
    top_k: int
    tools: list[AnthropicTool]
    tool_choice: dict[str, Any]
    metadata: dict[str, str]
    stream: bool
    thinking: dict[str, Any]
    output_config: dict[str, Any]


# OpenAI fields this translation honours. `stream_options` needs nothing: the Messages API
# always reports usage. `top_k` is not OpenAI's, but clients send it via `extra_body`.
HANDLED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "reasoning_effort",
        "response_format",
    }
)


def to_anthropic_request(
    request: ChatRequest, model: str, *, stream: bool, default_max_tokens: int
) -> tuple[MessagesRequest, tuple[str, ...]]:
    """The Messages API body for `request`, and the OpenAI parameters left out of it."""
    fields: Mapping[str, Any] = request
    if (fields.get("n") or 1) != 1:
        raise InvalidRequest(
            "this model's provider returns one choice only: n must be 1", param="n"
        )
    system, messages = translate_messages(request["messages"])
    body: MessagesRequest = {
        "model": model,
        "max_tokens": max_output_tokens(request) or default_max_tokens,
        "messages": messages,
    }
    if system:
        body["system"] = system
    stop = fields.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if fields.get("tools"):
        body["tools"] = [to_anthropic_tool(tool, i) for i, tool in enumerate(fields["tools"])]
    choice = to_tool_choice(fields)
    if choice is not None:
        body["tool_choice"] = choice
    dropped = apply_options(fields, body, model)  # type: ignore[arg-type]
    if fields.get("user"):
        body["metadata"] = {"user_id": fields["user"]}
    if stream:
        body["stream"] = True
    return body, (*dropped_params(fields), *dropped)


def dropped_params(fields: Mapping[str, Any]) -> tuple[str, ...]:
    # None and False mean "not asked for" (`logprobs: false`), so they are not reported.
    return tuple(
        name
        for name, value in fields.items()
        if name not in HANDLED and value is not None and value is not False
    )


def translate_messages(
    messages: Iterable[Message],
) -> tuple[list[TextBlock], list[AnthropicMessage]]:
    """(system blocks, turns). System and developer messages are hoisted, wherever they are,
    because the Messages API has no system role; same-role neighbours become one turn."""
    system: list[TextBlock] = []
    turns: list[AnthropicMessage] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system += text_blocks(message.get("content"), f"messages[{i}].content")
            continue
        blocks, turn_role = _blocks_for(message, i)
        if not blocks:
            continue  # the API rejects empty turns; an empty message carries nothing anyway
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    return system, turns


def _blocks_for(message: Message, i: int) -> tuple[list[ContentBlock], str]:
    role = message.get("role")
    param = f"messages[{i}]"
    if role == "user":
        return list(content_blocks(message.get("content"), f"{param}.content")), "user"
    if role == "assistant":
        # Thinking blocks go back first and untouched: Claude checks their signatures.
        blocks: list[ContentBlock] = thinking_blocks(message, param)
        blocks += text_blocks(message.get("content"), f"{param}.content")
        for j, call in enumerate(message.get("tool_calls") or ()):
            blocks.append(tool_use_block(call, f"{param}.tool_calls[{j}]"))
        return blocks, "assistant"
    if role == "tool":
        return [tool_result_block(message, param)], "user"
    raise InvalidRequest(
        f"{param}.role '{role}' is not supported by this model's provider; use tools",
        param=f"{param}.role",
    )


def thinking_blocks(message: Message, param: str) -> list[ContentBlock]:
    """An assistant message's `thinking_blocks` (as the gateway returned them) for Claude."""
    blocks = message.get("thinking_blocks") or []
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking") for b in blocks
    ):
        raise InvalidRequest(
            f"{param}.thinking_blocks must be the thinking blocks of an earlier answer",
            param=f"{param}.thinking_blocks",
        )
    return blocks  # type: ignore[return-value]


def text_blocks(content: Any, param: str) -> list[TextBlock]:
    """Text parts only (system and assistant messages); empty text is left out."""
    blocks: list[TextBlock] = []
    for block in content_blocks(content, param):
        if block["type"] != "text":
            raise InvalidRequest(f"{param} may only hold text parts here", param=param)
        blocks.append(cast(TextBlock, block))
    return blocks


def content_blocks(content: Any, param: str) -> list[TextBlock | ImageBlock]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[TextBlock | ImageBlock] = []
    for j, part in enumerate(content):
        block = _part_block(part, f"{param}[{j}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _part_block(part: dict[str, Any], param: str) -> TextBlock | ImageBlock | None:
    kind = part.get("type")
    block: TextBlock | ImageBlock
    if kind in ("text", "refusal"):
        text = part.get(kind)
        if not isinstance(text, str):
            raise InvalidRequest(f"{param}.{kind} must be a string", param=param)
        if not text:
            return None
        block = {"type": "text", "text": text}
    elif kind == "image_url":
        block = {"type": "image", "source": image_source(part.get("image_url"), param)}
    elif kind == "file":
        block = document_block(part["file"], param)
    else:
        raise InvalidRequest(
            f"{param}: content parts of type '{kind}' are not supported by this model's provider",
            param=param,
        )
    # Prompt caching is opt-in per block; clients that know about it mark parts directly.
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def document_block(file: dict[str, Any], param: str) -> ImageBlock:
    """A PDF `file` part as a `document` block (other kinds of file: a 400 naming it)."""
    media_type, data = file_payload(file, param)
    if media_type != "application/pdf":
        raise InvalidRequest(
            f"{param}: this model's provider reads PDF files only, not {media_type}", param=param
        )
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "document", "source": source}


def image_source(image_url: Any, param: str) -> dict[str, str]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise InvalidRequest(f"{param}.image_url.url must be a string", param=param)
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding.rsplit(";", 1)[-1] != "base64" or not media_type:
            raise InvalidRequest(
                f"{param}: image data URLs must look like data:image/png;base64,...",
                param=param,
            )
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise InvalidRequest(f"{param}: image URLs must be http(s) or data URLs", param=param)


def tool_use_block(call: ToolCall, param: str) -> ToolUseBlock:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise InvalidRequest(f"{param} must be an object with a 'function'", param=param)
    function: Mapping[str, Any] = call["function"]
    call_id = required_string(call, "id", f"{param}.id")
    name = required_string(function, "name", f"{param}.function.name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequest(
            f"{param}.function.arguments must be a JSON object encoded as a string",
            param=f"{param}.function.arguments",
        )
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def tool_result_block(message: Message, param: str) -> ToolResultBlock:
    tool_call_id = required_string(message, "tool_call_id", f"{param}.tool_call_id")
    block: ToolResultBlock = {"type": "tool_result", "tool_use_id": tool_call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        parts = content_blocks(content, f"{param}.content")
        if parts:
            block["content"] = parts
    return block


def to_anthropic_tool(tool: Any, i: int) -> AnthropicTool:
    is_function = isinstance(tool, dict) and tool.get("type") == "function"
    function = tool.get("function") if is_function else None
    if not isinstance(function, dict):
        raise InvalidRequest(
            f"tools[{i}]: only function tools are supported by this model's provider",
            param=f"tools[{i}]",
        )
    translated: AnthropicTool = {
        "name": required_string(function, "name", f"tools[{i}].function.name"),
        # The Messages API requires a schema; OpenAI allows leaving it out for no arguments.
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        translated["description"] = function["description"]
    if isinstance(tool.get("cache_control"), dict):
        translated["cache_control"] = tool["cache_control"]
    return translated


def to_tool_choice(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    choice = fields.get("tool_choice")
    translated: dict[str, Any] | None
    if choice is None:
        translated = None
    elif choice in ("auto", "none"):
        translated = {"type": choice}
    elif choice == "required":
        translated = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = required_string(choice["function"], "name", "tool_choice.function.name")
        translated = {"type": "tool", "name": name}
    else:
        raise InvalidRequest(f"unsupported tool_choice: {choice!r}", param="tool_choice")
    if fields.get("parallel_tool_calls") is False and fields.get("tools"):
        translated = translated or {"type": "auto"}
        if translated["type"] != "none":
            translated["disable_parallel_tool_use"] = True
    return translated


def required_string(fields: Mapping[str, Any], name: str, param: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{param} must be a non-empty string", param=param)
    return value
