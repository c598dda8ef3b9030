"""OpenAI's Responses API for the fake OpenAI upstream: what it refuses, what it answers.

`FakeOpenAI` sends `/v1/responses` here. It serves `POST /v1/responses` (JSON or SSE),
`GET` and `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`. By default
it echoes, the way the chat fake does.

Shapes follow openai-python's types (src/openai/types/responses/: response_create_params.py,
response_input_item_param.py, function_tool_param.py, response.py, response_usage.py,
response_output_message.py, response_function_tool_call.py, response_reasoning_item.py,
response_stream_event.py). The SSE sequence follows what `client.responses.stream()` needs
(lib/streaming/responses/_responses.py) and the real traffic recorded in pydantic-ai's
cassettes (tests/models/cassettes/test_openai_responses/*.yaml). Error texts are the API's
own words, as users quoted them in the issue threads cited next to each rule. A wrong
translation therefore fails here, just as it would fail against the real API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_upstream import FakeUpstream, Pause, json_reply, sse_reply

# OpenAI's reasoning models (o1, o3, o4-mini, gpt-5*, but not gpt-5-chat). fake_openai.py's
# chat rules import this too, so there is one definition.
REASONING_MODEL = re.compile(r"(o\d|gpt-5)(?!.*-chat)")
CREATED = 1700000000
# The reasoning tokens a reasoning item costs. They count towards `max_output_tokens`.
REASONING_TOKENS = 4
# The API's floor for max_output_tokens: "Invalid 'max_output_tokens': integer below minimum
# value. Expected a value >= 16, but got 10 instead." (vectorize-io/hindsight#58).
MIN_OUTPUT_TOKENS = 16
# Answering with a reasoning item that was never stored is a 404 in the real API, not a
# 400. See "Error: 404 Item with id 'rs_…' not found. Items are not persisted when `store`
# is set to false." in can1357/oh-my-pi#41 and anomalyco/opencode#7724.
ITEM_NOT_FOUND_STATUS = 404

Problem = tuple[int, dict[str, Any]]
Event = tuple[str, dict[str, Any]] | Pause

# ResponseCreateParamsBase's fields (response_create_params.py), plus `stream` from its two
# subclasses and the two penalties, which the API knows but the SDK leaves out. Any other
# top-level key gets a 400 "Unknown parameter: 'x'." from the real API. That includes Chat
# Completions' `max_tokens`, `n`, `stop`, `seed` and `logprobs`.
FIELDS = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
        "presence_penalty",
        "frequency_penalty",
    }
)
# Chat Completions fields whose new home the API names in its 400. For example:
# "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved to
# 'input'." Also 'response_format' -> 'text.format', 'max_completion_tokens' ->
# 'max_output_tokens' and 'reasoning_effort' -> 'reasoning.effort'. These texts, and the
# "Unknown parameter" ones above, are as users and a third-party proxy's parity tests
# recorded them from the live API.
MOVED = {
    "messages": "input",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
    "reasoning_effort": "reasoning.effort",
}
# The only member of ResponseCreateParams.stream_options.
STREAM_OPTIONS = frozenset({"include_obfuscation"})
# response_includable.py
INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)
# easy_input_message_param.py: role is one of these four.
ROLES = ("user", "assistant", "system", "developer")
# response_input_message_content_list_param.py (what people send) and
# response_output_message_param.py (what the model said). An assistant turn holding input
# parts gets "Invalid value: 'input_text'. Supported values are: 'output_text' and
# 'refusal'.", param input[N].content[0]. This is widely quoted by Responses adapters that
# got it wrong.
INPUT_PARTS = ("input_text", "input_image", "input_file")
OUTPUT_PARTS = ("output_text", "refusal")
IMAGE_DETAILS = ("low", "high", "auto", "original")
# The input items this fake understands (response_input_item_param.py). Hosted-tool items
# such as web_search_call or computer_call exist in the real API, but this fake does not
# run those tools, so it refuses them.
ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference")
# tool_param.py: the tool types the API knows. Only `function` tools are ever called here.
TOOL_TYPES = (
    "function",
    "file_search",
    "computer",
    "computer_use_preview",
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "mcp",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "namespace",
    "tool_search",
    "apply_patch",
)
# function_tool_param.py
FUNCTION_TOOL_KEYS = frozenset(
    {
        "type",
        "name",
        "parameters",
        "strict",
        "description",
        "defer_loading",
        "allowed_callers",
        "output_schema",
    }
)
TOOL_CHOICE_MODES = ("none", "auto", "required")
FORMATS = ("text", "json_object", "json_schema")
# shared/reasoning_effort.py, shared_params/reasoning.py, response_text_config_param.py
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")
VERBOSITIES = ("low", "medium", "high")
TRUNCATIONS = ("auto", "disabled")
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
BOOLEANS = ("stream", "background", "store", "parallel_tool_calls")
STRINGS = ("instructions", "previous_response_id", "user", "safety_identifier", "prompt_cache_key")
DECIMALS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
INTEGERS = ("max_output_tokens", "max_tool_calls", "top_logprobs")
OBJECTS = ("text", "reasoning", "stream_options", "prompt")
WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)

NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


# --- building blocks: what the API returns ----------------------------------------------


def openai_error(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body (response.py's HTTP errors; "type" is invalid_request_error)."""
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def output_text(text: str) -> dict[str, Any]:
    """An `output_text` content part (response_output_text.py: annotations are required)."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(
    text: str, *, id_: str = "msg_fake", status: str = "completed", refusal: str | None = None
) -> dict[str, Any]:
    """An assistant `message` output item (response_output_message.py)."""
    content = [output_text(text)] if refusal is None else [{"type": "refusal", "refusal": refusal}]
    return {"id": id_, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(
    name: str, arguments: str, *, call_id: str = "call_fake", id_: str = "fc_fake"
) -> dict[str, Any]:
    """A `function_call` output item (response_function_tool_call.py). `arguments` is a JSON
    string, never "" (lib/_parsing/_responses.py json.loads it for strict tools)."""
    return {
        "id": id_,
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def reasoning_item(
    id_: str = "rs_fake", *, summary: list[str] | None = None, encrypted_content: str | None = None
) -> dict[str, Any]:
    """A `reasoning` output item (response_reasoning_item.py). `summary` may be empty."""
    parts = [{"type": "summary_text", "text": text} for text in summary or []]
    return {
        "id": id_,
        "type": "reasoning",
        "summary": parts,
        "encrypted_content": encrypted_content,
    }


def response_usage(
    input_tokens: int = 12,
    output_tokens: int = 5,
    *,
    reasoning_tokens: int = 0,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """ResponseUsage (response_usage.py). Every field is required. cache_write_tokens has
    been required since openai-python 2.45. output_tokens includes reasoning_tokens."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(
    output: list[dict[str, Any]],
    *,
    request: dict[str, Any] | None = None,
    id_: str = "resp_fake",
    status: str = "completed",
    usage: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """A full `Response` (response.py). It echoes the request's settings with the API's
    defaults, and carries every field the real API returns. The layout follows the
    response.completed payload in pydantic-ai's cassette
    test_openai_include_raw_annotations_streaming.yaml."""
    body = request or {}
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    terminal = status in ("completed", "incomplete", "failed")
    return {
        "id": id_,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "completed_at": CREATED if terminal else None,
        "error": None,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body.get("model", "gpt-test"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        # "auto" is answered with the tier actually used.
        "service_tier": "default"
        if body.get("service_tier") in (None, "auto")
        else body["service_tier"],
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [_echo_tool(t) for t in body.get("tools") or []],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return tool
    # The API echoes function tools with their defaults filled in (function_tool.py).
    return {
        "description": None,
        "parameters": None,
        **tool,
        "strict": True if tool.get("strict") is None else tool["strict"],
    }


def response_events(response: dict[str, Any], *, pause: float = 0.0) -> list[Event]:
    """The documented SSE events that stream `response`. Each one is (event name, payload)
    with `sequence_number` counting from 0. There is no `data: [DONE]`.

    The first event is response.created, with `output: []`, because the SDK's stream state
    starts its snapshot from it. Each output item is added at the next `output_index`. A
    message is added with `content: []`, then gets content_part.added, then one text delta
    per word, each with `logprobs: []`. A function call is added with `arguments: ""`, then
    gets two argument deltas and a `.done` that carries `name`. The terminal event is
    response.completed, response.incomplete or response.failed.
    Sources: lib/streaming/responses/_responses.py; response_stream_event.py; the
    cassettes test_openai_include_raw_annotations_streaming.yaml and
    test_openai_responses_streaming_usage.yaml.
    """
    events: list[Event] = []
    sequence = 0

    def emit(kind: str, **fields: Any) -> None:
        nonlocal sequence
        events.append((kind, {"type": kind, **fields, "sequence_number": sequence}))
        sequence += 1

    def wait() -> None:
        if pause:
            events.append(Pause(pause))

    start = {
        **response,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "completed_at": None,
        "incomplete_details": None,
    }
    emit("response.created", response=start)
    emit("response.in_progress", response=start)
    for index, item in enumerate(response["output"]):
        where = {"output_index": index}
        if item["type"] == "message":
            emit(
                "response.output_item.added",
                item={**item, "status": "in_progress", "content": []},
                **where,
            )
            for c, part in enumerate(item["content"]):
                at = {"item_id": item["id"], "output_index": index, "content_index": c}
                refusal = part["type"] == "refusal"
                empty = {"type": "refusal", "refusal": ""} if refusal else output_text("")
                emit("response.content_part.added", part=empty, **at)
                value = part["refusal"] if refusal else part["text"]
                for piece in _pieces(value):
                    wait()
                    if refusal:
                        emit("response.refusal.delta", delta=piece, **at)
                    else:
                        emit("response.output_text.delta", delta=piece, logprobs=[], **at)
                if refusal:
                    emit("response.refusal.done", refusal=value, **at)
                else:
                    emit("response.output_text.done", text=value, logprobs=[], **at)
                emit("response.content_part.done", part=part, **at)
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                item={**item, "status": "in_progress", "arguments": ""},
                **where,
            )
            arguments = item["arguments"]
            cut = len(arguments) // 2
            for piece in (arguments[:cut], arguments[cut:]):
                wait()
                emit(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    delta=piece,
                    **where,
                )
            emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                name=item["name"],
                arguments=arguments,
                **where,
            )
        else:  # reasoning (the cassette test_openai_responses_thinking_part_iter.yaml)
            emit("response.output_item.added", item={**item, "summary": []}, **where)
            for s, part in enumerate(item.get("summary") or []):
                at = {"item_id": item["id"], "output_index": index, "summary_index": s}
                emit(
                    "response.reasoning_summary_part.added",
                    part={"type": "summary_text", "text": ""},
                    **at,
                )
                for piece in _pieces(part["text"]):
                    wait()
                    emit("response.reasoning_summary_text.delta", delta=piece, **at)
                emit("response.reasoning_summary_text.done", text=part["text"], **at)
                emit("response.reasoning_summary_part.done", part=part, **at)
        emit("response.output_item.done", item=item, **where)
    terminal = {"incomplete": "response.incomplete", "failed": "response.failed"}
    emit(terminal.get(response["status"], "response.completed"), response=response)
    return events


def _pieces(text: str) -> list[str]:
    """Split `text` into words that keep their trailing space, so they join back exactly."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


# --- what the API keeps between requests ------------------------------------------------


@dataclass
class StoredResponse:
    """One stored response. `input_items` are this request's input items with ids, as GET
    /input_items lists them. `conversation` is what `previous_response_id` brings back:
    the whole chain's input, plus this response's output."""

    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    conversation: list[dict[str, Any]]


@dataclass
class ResponsesState:
    """The fake's memory. It holds the responses stored because `store` was not false,
    every stored item by id (for item_reference and for replaying reasoning), and the
    encrypted reasoning it issued, keyed by reasoning id."""

    responses: dict[str, StoredResponse] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    encrypted: dict[str, str] = field(default_factory=dict)
    issued: int = 0

    def new_id(self, prefix: str) -> str:
        self.issued += 1
        return f"{prefix}_fake{self.issued:04d}"


# --- strictness: what the API refuses ---------------------------------------------------


def responses_problem(body: Any, state: ResponsesState | None = None) -> Problem | None:
    """(status, OpenAI error body) if the real API would refuse this `POST /v1/responses`,
    else None. `state` holds what earlier requests stored. Without it, no
    previous_response_id and no unpersisted reasoning item can be found.

    The checks run in the API's order, as far as recorded. Shape comes first: model, the
    top-level keys, input, then each field's type and value. Server state comes next:
    previous_response_id, and tool calls paired with their outputs. The model's
    capabilities come last."""
    state = ResponsesState() if state is None else state
    if not isinstance(body, dict):
        return 400, openai_error(NOT_JSON)
    return (
        _model_problem(body)
        or _keys_problem(body)
        or _input_problem(body.get("input"))
        or _field_problem(body)
        or _tools_problem(body)
        or _state_problem(body, state)
        or _capability_problem(body)
    )


def _bad(
    message: str, param: str | None = None, code: str | None = None, status: int = 400
) -> Problem:
    return status, openai_error(message, param, code)


def _kind(value: Any) -> str:
    """The API's word for a JSON value's type. It calls null "an object"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _missing(param: str) -> Problem:
    # "Missing required parameter: 'tools[0].name'." is the classic one, answered to
    # chat-shaped tools (quoted in many OSS Responses adapters).
    return _bad(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> Problem:
    message = f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead."
    return _bad(message, param, "invalid_type")


def _wrong_value(param: str, value: Any, supported: Iterable[str]) -> Problem:
    names = [f"'{s}'" for s in supported]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f", and {names[-1]}"
    if len(names) == 2:
        listed = f"{names[0]} and {names[1]}"
    return _bad(
        f"Invalid value: '{value}'. Supported values are: {listed}.", param, "invalid_value"
    )


def _model_problem(body: dict[str, Any]) -> Problem | None:
    """response_create_params.py: `model` is the one required field."""
    if "model" not in body:
        return _missing("model")
    if not isinstance(body["model"], str):
        return _wrong_type("model", "a string", body["model"])
    if not body["model"]:
        return _bad("The requested model '' does not exist.", "model", "model_not_found")
    return None


def _keys_problem(body: dict[str, Any]) -> Problem | None:
    """Chat Completions fields are refused. Some get "moved to" hints. The rest are
    unknown, and so is any member of stream_options other than include_obfuscation
    (Chat's include_usage gets "Unknown parameter: 'stream_options.include_usage'.")."""
    for key in body:
        if key in MOVED:
            message = (
                f"Unsupported parameter: '{key}'. In the Responses API, this parameter has moved "
                f"to '{MOVED[key]}'. Try again with the new parameter. See the API documentation "
                "for more information: https://platform.openai.com/docs/api-reference/responses/create."
            )
            return _bad(message, None, "unsupported_parameter")
        if key not in FIELDS:
            return _bad(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    options = body.get("stream_options")
    if isinstance(options, dict):
        for key in options:
            if key not in STREAM_OPTIONS:
                param = f"stream_options.{key}"
                return _bad(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    return None


def _input_problem(given: Any) -> Problem | None:
    """response_create_params.py: `input` is a string or a list of input items."""
    if given is None or isinstance(given, str):
        return None
    if not isinstance(given, list):
        return _wrong_type("input", "one of a string or array of input items", given)
    for i, item in enumerate(given):
        problem = _item_problem(f"input[{i}]", item)
        if problem:
            return problem
    return None


def item_type(item: dict[str, Any]) -> str:
    """An item's type. Easy messages may leave out `type`, and so may item references
    (easy_input_message_param.py, response_input_item_param.py ItemReference)."""
    kind = item.get("type")
    if isinstance(kind, str):
        return kind
    return "message" if "role" in item else "item_reference"


def _item_problem(where: str, item: Any) -> Problem | None:
    if not isinstance(item, dict):
        return _wrong_type(where, "an input item object", item)
    kind = item_type(item)
    if kind not in ITEM_TYPES:
        return _wrong_value(f"{where}.type", kind, ITEM_TYPES)
    if kind == "message":
        return _message_problem(where, item)
    required = {
        # response_function_tool_call_param.py: arguments, call_id, name (and type).
        "function_call": ("call_id", "name", "arguments"),
        # response_input_item_param.py FunctionCallOutput: call_id, output.
        "function_call_output": ("call_id", "output"),
        # response_reasoning_item_param.py: id, summary.
        "reasoning": ("id", "summary"),
        "item_reference": ("id",),
    }[kind]
    for name in required:
        if item.get(name) is None:
            return _missing(f"{where}.{name}")
    if kind == "function_call" and not isinstance(item["arguments"], str):
        return _wrong_type(f"{where}.arguments", "a string", item["arguments"])
    if kind == "function_call_output":
        output = item["output"]
        if isinstance(output, list):
            return _parts_problem(f"{where}.output", output, INPUT_PARTS)
        if not isinstance(output, str):
            return _wrong_type(f"{where}.output", "one of a string or array of content", output)
    if kind == "reasoning" and not isinstance(item["summary"], list):
        return _wrong_type(f"{where}.summary", "an array of objects", item["summary"])
    return None


def _message_problem(where: str, item: dict[str, Any]) -> Problem | None:
    role = item.get("role")
    if role is None:
        return _missing(f"{where}.role")
    if role not in ROLES:
        return _wrong_value(f"{where}.role", role, ROLES)
    content = item.get("content")
    if content is None:
        return _missing(f"{where}.content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return _wrong_type(f"{where}.content", "one of a string or array of content", content)
    # Assistant history holds what the model said: output_text and refusal parts only.
    # Input parts are lenient: the API takes output_text back under any role.
    allowed = OUTPUT_PARTS if role == "assistant" else (*INPUT_PARTS, "output_text")
    return _parts_problem(f"{where}.content", content, allowed)


def _parts_problem(where: str, parts: list[Any], allowed: tuple[str, ...]) -> Problem | None:
    """Content parts (response_input_text_param.py, response_input_image_param.py,
    response_input_file_param.py, response_output_text_param.py, response_output_refusal_param.py)."""
    for j, part in enumerate(parts):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            return _wrong_type(at, "an object", part)
        kind = part.get("type")
        if kind not in allowed:
            return _wrong_value(at, kind, allowed)
        if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
            return _missing(f"{at}.text")
        if kind == "refusal" and not isinstance(part.get("refusal"), str):
            return _missing(f"{at}.refusal")
        if kind == "input_image":
            if part.get("image_url") is None and part.get("file_id") is None:
                return _missing(f"{at}.image_url")
            if part.get("detail") is not None and part["detail"] not in IMAGE_DETAILS:
                return _wrong_value(f"{at}.detail", part["detail"], IMAGE_DETAILS)
        if kind == "input_file" and not any(
            part.get(k) is not None for k in ("file_data", "file_id", "file_url")
        ):
            return _missing(f"{at}.file_data")
    return None


def _field_problem(body: dict[str, Any]) -> Problem | None:
    """Types and bounds of the scalar fields (response_create_params.py)."""
    for name in BOOLEANS:
        if body.get(name) is not None and not isinstance(body[name], bool):
            return _wrong_type(name, "a boolean", body[name])
    for name in STRINGS:
        if body.get(name) is not None and not isinstance(body[name], str):
            return _wrong_type(name, "a string", body[name])
    for name in DECIMALS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return _wrong_type(name, "a decimal", value)
    for name in INTEGERS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return _wrong_type(name, "an integer", value)
    for name in OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return _wrong_type(name, "an object", body[name])
    limit = body.get("max_output_tokens")
    if limit is not None and limit < MIN_OUTPUT_TOKENS:
        message = (
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {limit} instead."
        )
        return _bad(message, "max_output_tokens", "integer_below_min_value")
    calls = body.get("max_tool_calls")
    if calls is not None and calls < 1:
        message = (
            "Invalid 'max_tool_calls': integer below minimum value. Expected a value >= 1, "
            f"but got {calls} instead."
        )
        return _bad(message, "max_tool_calls", "integer_below_min_value")
    return _enum_problem(body) or _text_problem(body.get("text")) or _reasoning_problem(body)


def _enum_problem(body: dict[str, Any]) -> Problem | None:
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list):
            return _wrong_type("include", "an array of includable values", include)
        for k, value in enumerate(include):
            if value not in INCLUDABLE:
                return _wrong_value(f"include[{k}]", value, INCLUDABLE)
    if body.get("truncation") is not None and body["truncation"] not in TRUNCATIONS:
        return _wrong_value("truncation", body["truncation"], TRUNCATIONS)
    if body.get("service_tier") is not None and body["service_tier"] not in SERVICE_TIERS:
        return _wrong_value("service_tier", body["service_tier"], SERVICE_TIERS)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            return _wrong_type("metadata", "a metadata object", metadata)
        if len(metadata) > 16:
            message = (
                "Invalid 'metadata': too many properties. Expected an object with at most 16 "
                f"properties, but got an object with {len(metadata)} properties instead."
            )
            return _bad(message, "metadata", "object_above_max_properties")
    return None


def _text_problem(text: dict[str, Any] | None) -> Problem | None:
    """response_text_config_param.py / response_format_text_config_param.py: the format is
    flat. A json_schema format needs `name` and `schema` at its top. Chat's nested
    `json_schema: {...}` therefore misses `text.format.name`."""
    if not text:
        return None
    if text.get("verbosity") is not None and text["verbosity"] not in VERBOSITIES:
        return _wrong_value("text.verbosity", text["verbosity"], VERBOSITIES)
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        return _wrong_type("text.format", "an object", fmt)
    if fmt.get("type") not in FORMATS:
        return _wrong_value("text.format.type", fmt.get("type"), FORMATS)
    if fmt["type"] == "json_schema":
        if not isinstance(fmt.get("name"), str):
            return _missing("text.format.name")
        if not isinstance(fmt.get("schema"), dict):
            return _missing("text.format.schema")
    return None


def _reasoning_problem(body: dict[str, Any]) -> Problem | None:
    reasoning = body.get("reasoning")
    if not reasoning:
        return None
    if reasoning.get("effort") is not None and reasoning["effort"] not in EFFORTS:
        return _wrong_value("reasoning.effort", reasoning["effort"], EFFORTS)
    if reasoning.get("summary") is not None and reasoning["summary"] not in SUMMARIES:
        return _wrong_value("reasoning.summary", reasoning["summary"], SUMMARIES)
    return None


def _tools_problem(body: dict[str, Any]) -> Problem | None:
    """tool_param.py and function_tool_param.py: function tools are FLAT, with `name`,
    `parameters` and `strict` beside `type`. Chat's `{"type": "function", "function":
    {...}}` is answered "Missing required parameter: 'tools[0].name'."."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return _wrong_type("tools", "an array of tools", tools)
        for k, tool in enumerate(tools):
            where = f"tools[{k}]"
            if not isinstance(tool, dict):
                return _wrong_type(where, "an object", tool)
            if tool.get("type") is None:
                return _missing(f"{where}.type")
            if tool["type"] not in TOOL_TYPES:
                return _wrong_value(f"{where}.type", tool["type"], TOOL_TYPES)
            if tool["type"] != "function":
                continue
            if not isinstance(tool.get("name"), str):
                return _missing(f"{where}.name")
            parameters = tool.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                return _wrong_type(f"{where}.parameters", "an object", parameters)
            for key in tool:
                if key not in FUNCTION_TOOL_KEYS:
                    param = f"{where}.{key}"
                    return _bad(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    return _tool_choice_problem(body.get("tool_choice"))


def _tool_choice_problem(choice: Any) -> Problem | None:
    """response_create_params.py ToolChoice: a mode, or an object. The function form is
    flat too: `{"type": "function", "name": ...}`."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            return _wrong_value("tool_choice", choice, TOOL_CHOICE_MODES)
        return None
    if not isinstance(choice, dict):
        expected = "one of an object or 'none', 'auto', or 'required'"
        return _wrong_type("tool_choice", expected, choice)
    if choice.get("type") in ("function", "custom") and not isinstance(choice.get("name"), str):
        return _missing("tool_choice.name")
    return None


def _state_problem(body: dict[str, Any], state: ResponsesState) -> Problem | None:
    """What depends on what the API stored. There is previous_response_id (an unknown id
    is a 400 previous_response_not_found; bifrost#2441 quotes it). There are the item ids
    that input replays. There is the pairing of function calls with their outputs."""
    previous = body.get("previous_response_id")
    if previous is not None and body.get("conversation") is not None:
        message = (
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'."
        )
        return _bad(message, None, "mutually_exclusive_parameters")
    conversation = body.get("conversation")
    if conversation is not None:  # this fake keeps no Conversations
        cid = conversation.get("id") if isinstance(conversation, dict) else conversation
        return _bad(f"Conversation with id '{cid}' not found.", status=404)
    prompt = body.get("prompt")
    if prompt is not None:  # nor stored prompts
        return _bad(f"Prompt with id '{prompt.get('id')}' not found.", status=404)
    if previous is not None and previous not in state.responses:
        message = f"Previous response with id '{previous}' not found."
        return _bad(message, "previous_response_id", "previous_response_not_found")
    if body.get("background"):
        return _bad("fake_responses: background mode is not implemented by this fake.")
    history = state.responses[previous].conversation if previous is not None else []
    return _history_problem(history, input_items(body.get("input")), state)


def _history_problem(
    history: list[dict[str, Any]], given: list[dict[str, Any]], state: ResponsesState
) -> Problem | None:
    """Replayed items must exist. A function_call_output answers an earlier function_call:
    "No tool call found for function call output with call_id call_x.", param input, code
    null (continuedev/continue#10092, microsoft/vscode#320060). Every function_call is
    answered by a later output: "No tool output found for function call call_x."
    (anomalyco/opencode#16717). A reasoning item is found by id only if it was stored.
    Otherwise it must carry the encrypted_content this API issued for it."""
    conversation = list(history)
    for item in given:
        kind = item_type(item)
        if kind == "item_reference":
            found = state.items.get(item["id"])
            if found is None:
                return _bad(f"Item with id '{item['id']}' not found.", "input", None, 404)
            item, kind = found, item_type(found)
        if kind == "function_call_output":
            calls = [i.get("call_id") for i in conversation if item_type(i) == "function_call"]
            if item["call_id"] not in calls:
                message = (
                    f"No tool call found for function call output with call_id {item['call_id']}."
                )
                return _bad(message, "input")
        if kind == "reasoning":
            problem = _reasoning_replay_problem(item, state)
            if problem:
                return problem
        conversation.append(item)
    answered = {i.get("call_id") for i in conversation if item_type(i) == "function_call_output"}
    for item in conversation:
        if item_type(item) == "function_call" and item["call_id"] not in answered:
            return _bad(f"No tool output found for function call {item['call_id']}.", "input")
    return None


def _reasoning_replay_problem(item: dict[str, Any], state: ResponsesState) -> Problem | None:
    if item["id"] in state.items:
        return None
    encrypted = item.get("encrypted_content")
    if encrypted is None:
        message = (
            f"Item with id '{item['id']}' not found. Items are not persisted when `store` is "
            "set to false. Try again with `store` set to true, or remove this item from your "
            "input."
        )
        return _bad(message, "input", None, ITEM_NOT_FOUND_STATUS)
    if state.encrypted.get(item["id"]) != encrypted:
        message = f"The encrypted content for item {item['id']} could not be verified."
        return _bad(message, None, "invalid_encrypted_content")
    return None


def _capability_problem(body: dict[str, Any]) -> Problem | None:
    """Reasoning models (the regex above) refuse sampling parameters other than the
    default temperature of 1, and logprobs: "Unsupported parameter: 'temperature' is not
    supported with this model.", param temperature, code null (OpenHands/software-agent-sdk#1837).
    Other models refuse `reasoning` settings: "Unsupported parameter: 'reasoning.effort'
    is not supported with this model."."""
    reasoning_model = REASONING_MODEL.match(body["model"]) is not None
    if not reasoning_model:
        for name in ("effort", "summary"):
            if (body.get("reasoning") or {}).get(name) is not None:
                param = f"reasoning.{name}"
                message = f"Unsupported parameter: '{param}' is not supported with this model."
                return _bad(message, param, "unsupported_parameter")
        return None
    for name in DECIMALS:
        value = body.get(name)
        if value is not None and not (name == "temperature" and value == 1):
            return _bad(f"Unsupported parameter: '{name}' is not supported with this model.", name)
    if body.get("top_logprobs"):
        message = "logprobs are not supported with reasoning models."
        return _bad(message, "top_logprobs", "unsupported_parameter")
    if "message.output_text.logprobs" in (body.get("include") or []):
        message = "logprobs are not supported with reasoning models."
        return _bad(message, "include", "unsupported_parameter")
    return None


# --- the answer ---------------------------------------------------------------------------


def input_items(given: Any) -> list[dict[str, Any]]:
    """`input` as a list of items. A string is one easy user message."""
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return list(given or [])


def text_of(item: dict[str, Any]) -> str:
    """A message's text parts (or a tool output's text), joined by spaces."""
    content = (
        item.get("output") if item_type(item) == "function_call_output" else item.get("content")
    )
    if isinstance(content, str):
        return content
    texts = [p["text"] for p in content or [] if p.get("type") in ("input_text", "output_text")]
    return " ".join(texts) or "parts"


def echo_text(conversation: list[dict[str, Any]]) -> str:
    """What the fake model echoes. That is the tool output when the conversation ends with
    one. Otherwise it is the last user message's text."""
    if conversation and item_type(conversation[-1]) == "function_call_output":
        return text_of(conversation[-1])
    for item in reversed(conversation):
        if item_type(item) == "message" and item.get("role") == "user":
            return text_of(item)
    return ""


def _tool_to_call(body: dict[str, Any], text: str, last: dict[str, Any]) -> str | None:
    """Which function the fake model calls, if any. A forced tool_choice decides. Otherwise
    it calls the first function tool when the user asks about the weather, unless that
    call's output has just come back."""
    functions = [t["name"] for t in body.get("tools") or () if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("type") == "function":
        return str(choice["name"])
    if choice == "required":
        return str(functions[0])
    if last and item_type(last) == "function_call_output":
        return None
    return str(functions[0]) if WEATHER.search(text) else None


def _words(value: Any) -> int:
    """Input tokens, deterministically: the words of every string in the input."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        keys = ("content", "text", "output", "arguments", "refusal")
        return sum(_words(value.get(k)) for k in keys)
    return 0


def answer(body: dict[str, Any], state: ResponsesState) -> dict[str, Any]:
    """The fake model's `Response` to a request that passed `responses_problem`. It is
    stored (with ids given to its input items) unless `store` is false."""
    previous = body.get("previous_response_id")
    history = state.responses[previous].conversation if previous else []
    given = [
        state.items.get(i["id"], i) if item_type(i) == "item_reference" else i
        for i in input_items(body.get("input"))
    ]
    conversation = [*history, *given]
    output: list[dict[str, Any]] = []
    reasoning_tokens = 0
    if REASONING_MODEL.match(body["model"]) and body.get("reasoning") is not None:
        rs_id = state.new_id("rs")
        encrypted = None
        if "reasoning.encrypted_content" in (body.get("include") or []):
            encrypted = f"gAAAAB-fake-{rs_id}"
            state.encrypted[rs_id] = encrypted
        output.append(reasoning_item(rs_id, encrypted_content=encrypted))
        reasoning_tokens = REASONING_TOKENS
    text = echo_text(conversation)
    tool = _tool_to_call(body, text, conversation[-1] if conversation else {})
    status, reason = "completed", None
    if tool is not None:
        arguments = orjson.dumps({"city": "Paris"}).decode()
        call = function_call_item(
            tool, arguments, call_id=state.new_id("call"), id_=state.new_id("fc")
        )
        output.append(call)
        answer_tokens = len(_pieces(arguments))
    else:
        fmt = (body.get("text") or {}).get("format") or {}
        said = (
            orjson.dumps({"echo": text}).decode()
            if fmt.get("type") == "json_schema"
            else f"echo: {text}"
        )
        words = _pieces(said)
        limit = body.get("max_output_tokens")
        budget = len(words) if limit is None else max(limit - reasoning_tokens, 1)
        if len(words) > budget:
            words = words[:budget]
            said = "".join(words).rstrip(" ")
            status, reason = "incomplete", "max_output_tokens"
        output.append(message_item(said, id_=state.new_id("msg"), status=status))
        answer_tokens = len(words)
    prompt_tokens = _words(body.get("instructions")) + _words(conversation) + 3 * len(conversation)
    usage = response_usage(
        prompt_tokens, answer_tokens + reasoning_tokens, reasoning_tokens=reasoning_tokens
    )
    response = response_object(
        output,
        request=body,
        id_=state.new_id("resp"),
        status=status,
        usage=usage,
        incomplete_reason=reason,
    )
    if body.get("store") is not False:
        stored = [_with_id(item, state) for item in given]
        for item in [*stored, *output]:
            state.items[item["id"]] = item
        state.responses[response["id"]] = StoredResponse(
            response, stored, [*history, *stored, *output]
        )
    return response


def _with_id(item: dict[str, Any], state: ResponsesState) -> dict[str, Any]:
    """An input item as the API stores it: with an id and a status, and a message's string
    content turned into parts (response_input_message_item.py, response_item.py)."""
    kind = item_type(item)
    prefix = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}.get(
        kind, "item"
    )
    stored = {**item, "type": kind, "id": item.get("id") or state.new_id(prefix)}
    if kind in ("message", "function_call", "function_call_output"):
        stored["status"] = item.get("status") or "completed"
    if kind == "message" and isinstance(item.get("content"), str):
        text = item["content"]
        assistant = item.get("role") == "assistant"
        stored["content"] = [
            output_text(text) if assistant else {"type": "input_text", "text": text}
        ]
    return stored


# --- the routes ---------------------------------------------------------------------------

_ROUTE = re.compile(r"^/v1/responses(?:/(?P<id>[^/]+)(?P<items>/input_items)?)?$")


class ResponsesAPI:
    """The Responses API's routes on a fake upstream. The upstream calls `problem()` before
    its queue (refusals jump the queue, as with the other fakes) and `reply()` for the
    default answer. Stored state lives in `state`."""

    def __init__(self) -> None:
        self.state = ResponsesState()

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/v1/responses" or path.startswith("/v1/responses/")

    def problem(self, method: str, path: str, body: Any) -> Problem | None:
        route = _ROUTE.match(path)
        if route is None or not self._allowed(method, route):
            return _bad(f"Invalid URL ({method} {path})", status=404)
        rid = route["id"]
        if rid is None:
            return responses_problem(body, self.state)
        if rid not in self.state.responses:
            return _bad(f"Response with id '{rid}' not found.", status=404)
        return None

    @staticmethod
    def _allowed(method: str, route: re.Match[str]) -> bool:
        if route["id"] is None:
            return method == "POST"
        if route["items"]:
            return method == "GET"
        return method in ("GET", "DELETE")

    async def reply(self, upstream: FakeUpstream, request: web.Request) -> web.StreamResponse:
        route = _ROUTE.match(request.path)
        assert route is not None
        rid = route["id"]
        if rid is None:
            body = upstream.requests[-1].body
            response = answer(body, self.state)
            if body.get("stream"):
                return await sse_reply(upstream, response_events(response))(request)
            return await json_reply(response)(request)
        if route["items"]:
            return await json_reply(self.input_items_page(rid, dict(request.query)))(request)
        if request.method == "DELETE":
            del self.state.responses[rid]
            return await json_reply({"id": rid, "object": "response.deleted", "deleted": True})(
                request
            )
        return await json_reply(self.state.responses[rid].response)(request)

    def input_items_page(self, rid: str, query: dict[str, str]) -> dict[str, Any]:
        """GET /v1/responses/{id}/input_items (input_item_list_params.py): newest first
        unless order=asc, `limit` (default 20) after the item `after`."""
        items = list(self.state.responses[rid].input_items)
        if query.get("order", "desc") == "desc":
            items.reverse()
        ids = [i["id"] for i in items]
        if query.get("after") in ids:
            items = items[ids.index(query["after"]) + 1 :]
        limit = int(query.get("limit", 20))
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
