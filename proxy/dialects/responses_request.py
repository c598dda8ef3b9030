"""An OpenAI Responses request -> the internal chat request (for routes that are not OpenAI).

The mapping follows openai-python's `ResponseCreateParams` and input item types:

- `instructions` becomes the first (system) message, `input` (a string or items) the rest.
  Assistant-side items in a row (output messages, function calls, reasoning) are one
  assistant turn; a `function_call_output` is a tool message.
- Function tools are flat in Responses (`{type, name, parameters, strict}`) and nested in
  chat; `tool_choice` maps one to one, `allowed_tools` by narrowing the tools.
- `text.format` becomes `response_format`, `reasoning.effort` `reasoning_effort`,
  `max_output_tokens` the output cap.
- Reasoning items the gateway issued carry, in `encrypted_content`, what other providers
  need back on the next turn (Claude's signed thinking blocks, Gemini's thought
  signatures): `gw1:` and base64 JSON. OpenAI's own reasoning items mean nothing to other
  providers and are left out for them.

What only OpenAI can do (hosted tools such as web search, stored files and prompts) is
marked `native_only`: such a request goes to OpenAI routes and skips the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.dialects.reasoning_state import decode_state
from proxy.dialects.translation import Translated, check_translation
from proxy.errors import InvalidRequest
from proxy.validation import MAX_INT

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_ASSISTANT_ITEMS = frozenset({"function_call", "reasoning"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
# Fields that change nothing for a translated route or are only echoed back.
_ECHOED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "store",
        "previous_response_id",
        "include",
        "truncation",
        "stream",
        "stream_options",
        "background",
        "service_tier",
        "top_logprobs",
        "max_tool_calls",
    }
)


def input_items(body: Mapping[str, Any]) -> list[Any]:
    """`input` as a list of items: a string is one user message."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("'input' must be a string or an array of items", param="input")
    return value


def to_chat_request(body: Mapping[str, Any], items: list[Any]) -> Translated:
    """A Responses body (whose input, history included, is `items`) as a chat request."""
    out = Translated("OpenAI")
    chat = out.chat
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    chat["model"] = model
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("'instructions' must be a string", param="instructions")
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    messages += _messages(items, out)
    if not messages and out.native_only is None:
        raise InvalidRequest("'input' is required", param="input")
    chat["messages"] = messages
    _scalars(body, out)
    _tools(body, out)
    _text(body.get("text"), out)
    _refusals(body, out)
    check_translation(out)
    _include(body.get("include"))
    return out


def _include(include: Any) -> None:
    if include is not None and not (
        isinstance(include, list) and all(isinstance(i, str) for i in include)
    ):
        raise InvalidRequest("'include' must be an array of strings", param="include")


def _messages(items: list[Any], out: Translated) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    turn: AssistantTurn | None = None  # the assistant turn being gathered
    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{param} must be an object", param=param)
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise InvalidRequest(f"{param}.type must be a string", param=f"{param}.type")
        if (kind == "message" and item.get("role") == "assistant") or kind in _ASSISTANT_ITEMS:
            if turn is None:
                turn = AssistantTurn()
            turn.add(item, kind, param, out)
            continue
        if turn is not None:
            messages.append(turn.message())
            turn = None
        if kind == "message":
            messages.append(_message(item, param, out))
        elif kind == "function_call_output":
            messages += _tool_output(item, param, out)
        elif kind == "item_reference":
            raise InvalidRequest(
                f"{param}: item references are not supported; send the item itself",
                param=param,
            )
        else:
            out.needs_native(f"{param}: '{kind}' items")
    if turn is not None:
        messages.append(turn.message())
    return messages


class AssistantTurn:
    """Output messages, function calls and reasoning in a row: one chat assistant message."""

    __slots__ = ("calls", "reasoning", "signatures", "texts", "thinking")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.thinking: list[Any] = []
        self.reasoning: str | None = None
        self.signatures: dict[str, Any] = {}

    def add(self, item: dict[str, Any], kind: str, param: str, out: Translated) -> None:
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                self.texts.append(content)
                return
            for j, part in enumerate(_list(content, f"{param}.content")):
                for translated in _part(part, f"{param}.content[{j}]", out):
                    self.texts.append(translated.get("text", ""))
        elif kind == "function_call":
            function = {
                "name": _string(item, "name", param),
                "arguments": _string(item, "arguments", param) or "{}",
            }
            call_id = _string(item, "call_id", param)
            self.calls.append({"id": call_id, "type": "function", "function": function})
        else:  # reasoning: the gateway's own carries provider state; OpenAI's means nothing here
            state = decode_state(item.get("encrypted_content")) or {}
            if isinstance(state.get("thinking_blocks"), list):
                self.thinking += state["thinking_blocks"]
            if isinstance(state.get("reasoning_content"), str):
                self.reasoning = state["reasoning_content"]
            if isinstance(state.get("signatures"), dict):
                self.signatures.update(state["signatures"])

    def message(self) -> dict[str, Any]:
        text = "".join(self.texts)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if self.calls:
            for call in self.calls:
                signature = self.signatures.get(call["id"])
                if isinstance(signature, str):  # Gemini's, back on the call it came with
                    call["extra_content"] = {"google": {"thought_signature": signature}}
            message["tool_calls"] = self.calls
        if self.thinking:
            message["thinking_blocks"] = self.thinking
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        return message


def _message(item: dict[str, Any], param: str, out: Translated) -> dict[str, Any]:
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise InvalidRequest(
            f"{param}.role must be one of user, assistant, system, developer",
            param=f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{param}.content must be a string or an array of content parts",
            param=f"{param}.content",
        )
    parts = []
    for j, part in enumerate(content):
        parts += _part(part, f"{param}.content[{j}]", out)
    return {"role": role, "content": parts}


def _part(part: Any, param: str, out: Translated) -> list[dict[str, Any]]:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise InvalidRequest(f"{param} must be an object with a 'type'", param=param)
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return [{"type": "text", "text": _string(part, "text", param)}]
    if kind == "refusal":
        return [{"type": "text", "text": _string(part, "refusal", param)}]
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            if part.get("file_id") is None:
                raise InvalidRequest(f"{param}.image_url is required", param=f"{param}.image_url")
            out.needs_native(f"{param}: images by file_id")
            return []
        image = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return [{"type": "image_url", "image_url": image}]
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str):
            out.needs_native(f"{param}: files by file_id or file_url")
            return []
        file = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return [{"type": "file", "file": file}]
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise InvalidRequest(f"{param}.input_audio is required", param=f"{param}.input_audio")
        data = _string(audio, "data", f"{param}.input_audio")
        audio_format = _string(audio, "format", f"{param}.input_audio")
        return [{"type": "input_audio", "input_audio": {"data": data, "format": audio_format}}]
    raise InvalidRequest(f"{param}.type '{kind}' is not a known content part", param=param)


def _tool_output(item: dict[str, Any], param: str, out: Translated) -> list[dict[str, Any]]:
    call_id = _string(item, "call_id", param)
    output = item.get("output")
    if isinstance(output, str):
        return [{"role": "tool", "tool_call_id": call_id, "content": output}]
    parts = []
    for j, part in enumerate(_list(output, f"{param}.output")):
        parts += _part(part, f"{param}.output[{j}]", out)
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    media = [p for p in parts if p["type"] != "text"]
    messages: list[dict[str, Any]] = [{"role": "tool", "tool_call_id": call_id, "content": text}]
    if media:  # chat tool messages carry text only: what else the tool returned follows
        messages.append({"role": "user", "content": media})
    return messages


def _scalars(body: Mapping[str, Any], out: Translated) -> None:
    chat = out.chat
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            raise InvalidRequest("'stream' must be a boolean", param="stream")
        chat["stream"] = body["stream"]
    cap = body.get("max_output_tokens")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_INT:
            raise InvalidRequest(
                "'max_output_tokens' must be a positive integer", param="max_output_tokens"
            )
        chat["max_completion_tokens"] = cap
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    for name in ("user", "safety_identifier"):
        if isinstance(body.get(name), str):
            chat.setdefault("user", body[name])
    if body.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise InvalidRequest("'reasoning' must be an object", param="reasoning")
        effort = reasoning.get("effort")
        if effort is not None:
            if not isinstance(effort, str) or effort not in _EFFORTS:
                raise InvalidRequest(
                    f"'reasoning.effort' must be one of {', '.join(sorted(_EFFORTS))}",
                    param="reasoning.effort",
                )
            chat["reasoning_effort"] = effort
    for name in ("service_tier", "top_logprobs", "max_tool_calls", "prompt_cache_key"):
        if body.get(name) is not None:
            out.dropped.append(name)
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise InvalidRequest("'metadata' must be an object of strings", param="metadata")


def _tools(body: Mapping[str, Any], out: Translated) -> None:
    chat = out.chat
    tools = body.get("tools")
    functions: list[dict[str, Any]] = []
    if tools is not None:
        for i, tool in enumerate(_list(tools, "tools")):
            param = f"tools[{i}]"
            if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
                raise InvalidRequest(f"{param} must be an object with a 'type'", param=param)
            if tool["type"] != "function":
                out.needs_native(f"{param}: the hosted tool '{tool['type']}'")
                continue
            name = _string(tool, "name", param)
            function: dict[str, Any] = {"name": name}
            for field in ("description", "parameters", "strict"):
                if tool.get(field) is not None:
                    function[field] = tool[field]
            functions.append({"type": "function", "function": function})
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequest(
                "'tool_choice' must be none, auto, required or an object", param="tool_choice"
            )
        chat["tool_choice"] = choice
    elif isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function":
            name = _string(choice, "name", "tool_choice")
            chat["tool_choice"] = {"type": "function", "function": {"name": name}}
        elif kind == "allowed_tools":
            allowed = {
                t.get("name")
                for t in _list(choice.get("tools"), "tool_choice.tools")
                if isinstance(t, dict) and isinstance(t.get("name"), str)
            }
            functions = [f for f in functions if f["function"]["name"] in allowed]
            mode = choice.get("mode", "auto")
            if mode not in ("auto", "required"):
                raise InvalidRequest(
                    "'tool_choice.mode' must be auto or required", param="tool_choice.mode"
                )
            chat["tool_choice"] = mode
        else:
            out.needs_native(f"tool_choice: the hosted tool '{kind}'")
    elif choice is not None:
        raise InvalidRequest("'tool_choice' must be a string or an object", param="tool_choice")
    if functions:
        chat["tools"] = functions
    else:
        chat.pop("tool_choice", None)
        chat.pop("parallel_tool_calls", None)


def _text(text: Any, out: Translated) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise InvalidRequest("'text' must be an object", param="text")
    if text.get("verbosity") is not None:
        out.dropped.append("text.verbosity")
    spec = text.get("format")
    if spec is None:
        return
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        out.chat["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise InvalidRequest(
            "'text.format.type' must be text, json_object or json_schema", param="text.format"
        )
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest("'text.format.schema' is required", param="text.format.schema")
    json_schema: dict[str, Any] = {"name": _string(spec, "name", "text.format"), "schema": schema}
    for field in ("strict", "description"):
        if spec.get(field) is not None:
            json_schema[field] = spec[field]
    out.chat["response_format"] = {"type": "json_schema", "json_schema": json_schema}


def _refusals(body: Mapping[str, Any], out: Translated) -> None:
    """What the gateway does not offer on any route: a clear 400, not a silent ignore."""
    if body.get("background") is True:
        raise InvalidRequest(
            "background mode is not supported by this gateway; stream instead",
            param="background",
        )
    if body.get("conversation") is not None:
        raise InvalidRequest(
            "the Conversations API is not supported by this gateway; use previous_response_id",
            param="conversation",
        )
    if body.get("prompt") is not None:
        out.needs_native("prompt: stored prompts")
    unknown = sorted(set(body) - _ECHOED - {"conversation", "prompt"})
    if unknown:
        out.dropped += unknown


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array", param=param)
    return value


def _string(fields: Mapping[str, Any], name: str, param: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"{param}.{name} must be a string", param=f"{param}.{name}")
    return value
