"""An Anthropic Messages API fake upstream: by default it echoes, like the real API would.

It speaks the documented wire format (https://docs.anthropic.com/en/api/messages and
/en/docs/build-with-claude/streaming): a `Message` object, or named SSE events from
`message_start` to `message_stop`. It is strict the way the real API is: it checks the
auth headers and the request body and answers 401/400 with Anthropic's error body, so a
wrong translation fails a test here instead of hiding behind a lenient fake.

It also counts tokens (`POST /v1/messages/count_tokens`,
https://docs.anthropic.com/en/api/messages-count-tokens). That request is a Messages
request without `max_tokens`. Both routes ignore the `?beta=true` query that the SDK's
`client.beta.messages.*` calls add (anthropic-sdk-python resources/beta/messages).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.support import anthropic_rules
from tests.support.anthropic_rules import MAX_OUTPUT, request_problem
from tests.support.fake_upstream import FakeUpstream, Pause, json_reply, sse_reply

Event = tuple[str, dict[str, Any]] | Pause

COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# MessageCountTokensParams (anthropic-sdk-python types/message_count_tokens_params.py): a
# Messages request without max_tokens and without the sampling and streaming fields. Any
# other key is answered with a 400 "<key>: Extra inputs are not permitted". That includes
# max_tokens, which the Messages API requires.
COUNT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
    }
)


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
    elif block["type"] == "thinking":
        # Extended thinking guide, "Streaming thinking": thinking deltas, then the signature.
        empty = {"type": "thinking", "thinking": ""}
        pieces = [("thinking_delta", "thinking", w) for w in _words(block["thinking"])]
        pieces.append(("signature_delta", "signature", block["signature"]))
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


class FakeAnthropic(FakeUpstream):
    """Echoes, and answers like the API would: a thinking block first when thinking is on
    (signed; only signatures it issued are accepted back), JSON text for
    `output_config.format`, a call of the tool a forced `tool_choice` names."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.signatures: set[str] = set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Refuse what the real API refuses, ahead of any scripted reply (which stays queued).
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if request.path == COUNT_TOKENS_PATH:  # aiohttp's path leaves out the query
            problem = count_tokens_problem(request, body)
        else:
            problem = request_problem(request, body) or self._signature_problem(body)
        if problem is not None:
            self.queue.appendleft(json_reply(error_body(problem[1], problem[2]), problem[0]))
        return await super()._handle(request)

    def _signature_problem(self, body: Any) -> tuple[int, str, str] | None:
        for message in body.get("messages", ()) if isinstance(body, dict) else ():
            for block in message.get("content") if isinstance(message.get("content"), list) else ():
                if (
                    block.get("type") == "thinking"
                    and block.get("signature") not in self.signatures
                ):
                    return 400, "invalid_request_error", "Invalid `signature` in `thinking` block"
        return None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        if request.path == COUNT_TOKENS_PATH:
            return web.json_response({"input_tokens": count_input_tokens(body)})
        text = last_user_text(body["messages"])
        blocks = [text_block(f"echo: {text}")]
        stop_reason = "end_turn"
        choice = body.get("tool_choice") or {}
        if "format" in (body.get("output_config") or {}):
            blocks = [text_block(orjson.dumps({"echo": text}).decode())]
        elif choice.get("type") == "tool":
            blocks = [tool_use_block("toolu_forced", choice["name"], {"echo": text})]
            stop_reason = "tool_use"
        if body.get("thinking"):
            signature = f"sig-{len(self.signatures)}"
            self.signatures.add(signature)
            thought = {
                "type": "thinking",
                "thinking": f"Thinking about {text}",
                "signature": signature,
            }
            blocks.insert(0, thought)
        model = body.get("model", "claude-test")
        if body.get("stream"):
            events = stream_events(blocks, model=model, stop_reason=stop_reason)
            return await sse_reply(self, events)(request)
        return web.json_response(message(blocks, model=model, stop_reason=stop_reason))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    content: Any = messages[-1].get("content")
    if isinstance(content, str):
        return content
    texts = [b["text"] for b in content if b.get("type") == "text"]
    if not texts:  # a turn of tool results only: echo what the tools said
        texts = [str(b.get("content")) for b in content if b.get("type") == "tool_result"]
    return " ".join(texts) or "parts"


def count_tokens_problem(request: web.Request, body: Any) -> tuple[int, str, str] | None:
    """(status, error type, message) where the real count_tokens endpoint would refuse.

    The headers are checked as for /v1/messages. Then come the count's own fields (no
    `max_tokens`: "max_tokens: Extra inputs are not permitted"). Then come the Messages body
    rules the two requests share: messages, system, tools, tool_choice, thinking and
    output_config (anthropic_rules). A count has no max_tokens, so the model's output
    ceiling stands in for it. The checks against max_tokens (the thinking budget must be
    below it) are therefore as lenient as the model allows."""
    if not request.headers.get("x-api-key"):
        return 401, "authentication_error", "x-api-key header is required"
    if not request.headers.get("anthropic-version"):
        return 400, "invalid_request_error", "anthropic-version: header is required"
    if not isinstance(body, dict):
        return 400, "invalid_request_error", "body must be a JSON object"
    extra = sorted(set(body) - COUNT_FIELDS)
    if extra:
        return 400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted"
    for name in ("model", "messages"):
        if name not in body:
            return 400, "invalid_request_error", f"{name}: Field required"
    if not isinstance(body["model"], str):
        return 400, "invalid_request_error", "model: Input should be a valid string"
    ceiling = MAX_OUTPUT.get(anthropic_rules._family(body["model"]), 128_000)
    shared = {k: v for k, v in body.items() if k != "cache_control"}
    problem = anthropic_rules._body_problem({**shared, "max_tokens": ceiling})
    return None if problem is None else (400, "invalid_request_error", problem)


def count_input_tokens(body: dict[str, Any]) -> int:
    """The fake's count, so tests can predict it. It is the whitespace-separated words of
    all text (the system prompt; text, thinking, tool_use input and tool_result content in
    the messages; tool names and descriptions), plus 3 per message."""
    messages = body.get("messages") or []
    tools = [f"{t.get('name', '')} {t.get('description', '')}" for t in body.get("tools") or []]
    texts = [*_texts(body.get("system")), *_texts(messages), *tools]
    return sum(len(text.split()) for text in texts) + 3 * len(messages)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if not isinstance(value, dict):
        return []
    texts = [*_texts(value.get("text")), *_texts(value.get("thinking"))]
    texts += _texts(value.get("content"))
    if value.get("type") == "tool_use":
        texts.append(orjson.dumps(value.get("input")).decode())
    return texts
