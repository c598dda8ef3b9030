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

from tests.support.anthropic_rules import request_problem
from tests.support.fake_upstream import FakeUpstream, Pause, json_reply, sse_reply

Event = tuple[str, dict[str, Any]] | Pause


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
