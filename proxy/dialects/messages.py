"""The Anthropic Messages API (POST /v1/messages): the anthropic SDK and every tool built on it.

Claude routes get the client's own body, untranslated (the alias swapped for the route's
model, the gateway's output cap applied, the client's `anthropic-beta` passed on), so
every Messages feature works there; other routes get it translated to the internal chat
request and their answer rendered back (`messages_request`, `messages_response`).
"""

from __future__ import annotations

from typing import Any

from proxy.dialects.base import Inbound, NativeRoute
from proxy.dialects.messages_request import to_chat_request
from proxy.dialects.messages_response import (
    MessagesEncoder,
    anthropic_error,
    error_event,
    event,
    to_message,
)
from proxy.errors import GatewayError, UpstreamFailure
from proxy.estimate import estimate_tokens
from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.anthropic_response import from_anthropic_message
from proxy.providers.base import StreamTranslator, load_object
from proxy.relay import StreamEncoder
from proxy.router import Route
from proxy.schema import ChatCompletion, Usage
from proxy.transport import SSEEvent, UpstreamRequest
from proxy.validation import parse_json_object


class MessagesDialect:
    api = "messages"
    passed_headers: tuple[bytes, ...] = (b"anthropic-beta",)

    def parse(self, body: bytes) -> Inbound:
        data = parse_json_object(body)
        translated = to_chat_request(data)
        return Inbound(
            translated.chat,  # type: ignore[arg-type]
            data,
            data.get("stream") is True,
            native_only=translated.native_only,
            dropped=tuple(translated.dropped),
        )

    def render(self, completion: ChatCompletion, inbound: Inbound) -> dict[str, Any]:
        return to_message(completion, show_thinking=thinking_asked(inbound))

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder:
        return MessagesEncoder(alias, show_thinking=thinking_asked(inbound))

    def error(self, error: GatewayError) -> tuple[int, bytes]:
        return anthropic_error(error)

    def native(self, route: Route, adapter: Any) -> NativeRoute | None:
        return NativeMessages(adapter) if isinstance(adapter, AnthropicAdapter) else None


def thinking_asked(inbound: Inbound) -> bool:
    """Reasoning other providers return is shown as thinking only to a client that asked."""
    thinking = inbound.body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


class NativeMessages:
    """A Claude route, called with the client's own Messages body."""

    def __init__(self, adapter: AnthropicAdapter) -> None:
        self._adapter = adapter

    def request(
        self, inbound: Inbound, model: str, *, cap: int | None, request_id: str
    ) -> UpstreamRequest:
        return self._adapter.native_request(
            native_body(inbound.body, model, cap),
            request_id=request_id,
            beta=inbound.headers.get("anthropic-beta"),
        )

    def answer(
        self, body: bytes, inbound: Inbound, alias: str
    ) -> tuple[dict[str, Any], Usage | None]:
        message = load_object(body)
        usage = from_anthropic_message(message, 0).get("usage")  # checks the shape, too
        message["model"] = alias
        return message, usage

    def translator(self) -> StreamTranslator:
        return PassThrough(self._adapter.stream_translator())

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder:
        return NativeMessagesEncoder(alias)

    def committed(self, event: Any) -> bool:
        return event.event in ("content_block_delta", "message_delta", "message_stop")


def native_body(body: dict[str, Any], model: str, cap: int | None) -> dict[str, Any]:
    """The client's body for a Claude route: its model, the cap, and only thinking blocks
    Claude signed (an unsigned one came from another provider's reasoning, which Claude
    would refuse)."""
    native = {**body, "model": model}
    if cap is not None and isinstance(body.get("max_tokens"), int):
        native["max_tokens"] = min(body["max_tokens"], cap)
    messages = body.get("messages")
    if isinstance(messages, list) and any(_unsigned_thinking(m) for m in messages):
        kept = (_signed_only(m) if _unsigned_thinking(m) else m for m in messages)
        native["messages"] = [m for m in kept if m is not None]
    return native


def _unsigned_thinking(message: Any) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "thinking" and not b.get("signature")
        for b in content
    )


def _signed_only(message: dict[str, Any]) -> dict[str, Any] | None:
    content = [
        b
        for b in message["content"]
        if not (b.get("type") == "thinking" and not b.get("signature"))
    ]
    return {**message, "content": content} if content else None  # nothing left: no turn


class PassThrough:
    """A native route's stream events, passed on as they are; the adapter's own stream
    translator reads them alongside, for the usage they report and the stream's end."""

    __slots__ = ("_reader", "finished", "usage")

    def __init__(self, reader: StreamTranslator) -> None:
        self._reader = reader
        self.usage: Usage | None = None
        self.finished = False

    def translate(self, event: SSEEvent) -> list[Any]:
        self._reader.translate(event)  # raises UpstreamFailure on an error event
        self.usage, self.finished = self._reader.usage, self._reader.finished
        return [event]


class NativeMessagesEncoder:
    """Claude's own events to a Messages client: as they came, the alias as the model."""

    __slots__ = ("_alias", "completion_tokens")

    def __init__(self, alias: str) -> None:
        self._alias = alias
        self.completion_tokens = 0

    def encode_all(self, events: list[SSEEvent]) -> bytes:
        out = bytearray()
        for item in events:
            data = load_object(item.data)
            name = str(data.get("type"))
            self._count(data)
            if name == "message_start" and isinstance(data.get("message"), dict):
                data["message"]["model"] = self._alias
                out += event(name, data)
            else:
                out += b"event: " + name.encode() + b"\ndata: " + item.data + b"\n\n"
        return bytes(out)

    def count(self, events: list[SSEEvent]) -> None:
        for item in events:
            self._count(load_object(item.data))

    def _count(self, data: dict[str, Any]) -> None:
        delta = data.get("delta")
        if data.get("type") == "content_block_delta" and isinstance(delta, dict):
            for name in ("text", "thinking", "partial_json"):
                if isinstance(delta.get(name), str):
                    self.completion_tokens += estimate_tokens(delta[name])

    def finish(self) -> bytes:
        return b""  # message_stop came from upstream

    def fail(self, failure: UpstreamFailure) -> bytes:
        return error_event(failure)
