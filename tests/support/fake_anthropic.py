"""An Anthropic Messages API fake upstream: by default it echoes, like the real API would.

It speaks the documented wire format (https://docs.anthropic.com/en/api/messages and
/en/docs/build-with-claude/streaming): a `Message` object, or named SSE events from
`message_start` to `message_stop`. It is strict the way the real API is: it checks the
auth headers and the request body and answers 401/400 with Anthropic's error body, so a
wrong translation fails a test here instead of hiding behind a lenient fake.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_upstream import FakeUpstream, Pause, json_reply, sse_reply

Event = tuple[str, dict[str, Any]] | Pause

# Top-level request fields the Messages API documents; anything else is a 400 there.
API_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
    }
)
BLOCK_TYPES = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(id_: str, name: str, input_: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": input_}


def usage(
    input_tokens: int = 12, output_tokens: int = 5, *, cache_read: int = 0, cache_creation: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
    }


def message(
    blocks: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    stop_sequence: str | None = None,
    model: str = "claude-test",
    id_: str = "msg_fake",
    counts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete `Message`, as a non-streaming request returns it."""
    return {
        "id": id_,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": counts or usage(),
    }


def error_body(type_: str, text: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": text}, "request_id": "req_fake"}


# The exact body Anthropic answers when the organisation's prepaid credit is gone: a 400,
# like a bad request (platform.claude.com/docs/en/api/errors; anthropics/claude-code#4208).
CREDIT_BALANCE_TOO_LOW = error_body(
    "invalid_request_error",
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
    "Billing to upgrade or purchase credits.",
)


def error_event(type_: str = "overloaded_error", text: str = "Overloaded") -> Event:
    return ("error", {"type": "error", "error": {"type": type_, "message": text}})


def stream_events(
    blocks: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    stop_sequence: str | None = None,
    model: str = "claude-test",
    id_: str = "msg_fake",
    counts: dict[str, Any] | None = None,
    pause: float = 0.0,
) -> list[Event]:
    """The documented event sequence that streams `message(blocks, ...)` (text, tool_use)."""
    counts = counts or usage()
    start = message([], model=model, id_=id_, counts={**counts, "output_tokens": 1})
    start["stop_reason"] = None
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(blocks):
        events += _block_events(index, block, pause)
        if index == 0:
            events.append(("ping", {"type": "ping"}))
    final = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": final,
                "usage": {"output_tokens": counts["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: dict[str, Any], pause: float) -> list[Event]:
    if block["type"] == "text":
        empty: dict[str, Any] = {"type": "text", "text": ""}
        pieces = [("text_delta", "text", w) for w in _words(block["text"])]
    else:
        empty = {**block, "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        cut = len(arguments) // 2
        # The API opens with an empty fragment and splits anywhere, even inside a string.
        parts = ["", arguments[:cut], arguments[cut:]]
        pieces = [("input_json_delta", "partial_json", p) for p in parts]
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": empty},
        )
    ]
    for kind, field, value in pieces:
        if pause:
            events.append(Pause(pause))
        delta = {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": kind, field: value},
        }
        events.append(("content_block_delta", delta))
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def request_problem(request: web.Request, body: Any) -> tuple[int, str, str] | None:
    """(status, error type, message) where the real API would refuse the request."""
    if not request.headers.get("x-api-key"):
        return 401, "authentication_error", "x-api-key header is required"
    if not request.headers.get("anthropic-version"):
        return 400, "invalid_request_error", "anthropic-version: header is required"
    if request.path != "/v1/messages":
        return 404, "not_found_error", f"Not found: {request.path}"
    if not isinstance(body, dict):
        return 400, "invalid_request_error", "body must be a JSON object"
    problem = _body_problem(body)
    return None if problem is None else (400, "invalid_request_error", problem)


def _body_problem(body: dict[str, Any]) -> str | None:
    extra = sorted(set(body) - API_FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        problem = _blocks_problem("system", system, allowed={"text"})
        if problem:
            return problem
    for i, turn in enumerate(messages):
        problem = _turn_problem(i, turn, messages[i - 1] if i else None)
        if problem:
            return problem
    return _tools_problem(body)


def _turn_problem(i: int, turn: Any, previous: Any) -> str | None:
    where = f"messages.{i}"
    if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
        return f"{where}.role: Input should be 'user' or 'assistant'"
    content: Any = turn.get("content")
    if isinstance(content, str):
        if not content:
            return f"{where}: all messages must have non-empty content"
        content = [text_block(content)]
    else:
        problem = _blocks_problem(where, content, allowed=BLOCK_TYPES)
        if problem:
            return problem
    return _pairing_problem(where, turn["role"], content, previous)


def _pairing_problem(
    where: str, role: str, content: list[dict[str, Any]], previous: Any
) -> str | None:
    """tool_use ids must be answered by tool_result blocks at the start of the next turn."""
    asked = _tool_use_ids(previous) if isinstance(previous, dict) else []
    results = [str(b.get("tool_use_id")) for b in content if b["type"] == "tool_result"]
    leading = [str(b.get("tool_use_id")) for b in content[: len(results)]]
    if results and (role != "user" or sorted(leading) != sorted(asked)):
        return f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {results}"
    if asked and sorted(results) != sorted(asked):
        return f"{where}: `tool_use` ids were found without `tool_result` blocks: {asked}"
    return None


def _tool_use_ids(turn: dict[str, Any]) -> list[str]:
    content = turn.get("content")
    if turn.get("role") != "assistant" or not isinstance(content, list):
        return []
    return [
        str(b.get("id")) for b in content if isinstance(b, dict) and b.get("type") == "tool_use"
    ]


def _blocks_problem(where: str, blocks: Any, *, allowed: set[str] | frozenset[str]) -> str | None:
    if not isinstance(blocks, list) or not blocks:
        return f"{where}: content must be a string or a non-empty list of blocks"
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in allowed:
            return f"{where}.content.{j}.type: unexpected block type {kind!r}"
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            return f"{where}.content.{j}: text content blocks must be non-empty"
        if kind == "image" and not _valid_image(block.get("source")):
            return f"{where}.content.{j}.source: invalid image source"
        if kind == "tool_use" and not isinstance(block.get("input"), dict):
            return f"{where}.content.{j}.input: Input should be a valid dictionary"
    return None


def _valid_image(source: Any) -> bool:
    if not isinstance(source, dict):
        return False
    if source.get("type") == "base64":
        return source.get("media_type") in IMAGE_TYPES and isinstance(source.get("data"), str)
    return source.get("type") == "url" and str(source.get("url", "")).startswith("http")


def _tools_problem(body: dict[str, Any]) -> str | None:
    for k, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool.get("name"), str) or not isinstance(tool.get("input_schema"), dict):
            return f"tools.{k}: name and input_schema are required"
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES
    ):
        return "tool_choice: Input tag does not match any of the expected tags"
    return None


class FakeAnthropic(FakeUpstream):
    def __init__(self) -> None:
        super().__init__(self._answer)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Refuse what the real API refuses, ahead of any scripted reply (which stays queued).
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        problem = request_problem(request, body)
        if problem is not None:
            self.queue.appendleft(json_reply(error_body(problem[1], problem[2]), problem[0]))
        return await super()._handle(request)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        blocks = [text_block(f"echo: {last_user_text(body['messages'])}")]
        model = body.get("model", "claude-test")
        if body.get("stream"):
            return await sse_reply(self, stream_events(blocks, model=model))(request)
        return web.json_response(message(blocks, model=model))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    content: Any = messages[-1].get("content")
    if isinstance(content, str):
        return content
    return " ".join(b["text"] for b in content if b.get("type") == "text") or "parts"
