"""The seams of an inbound dialect: the parsed request, the stream encoder, the dialect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from proxy.errors import GatewayError
from proxy.providers.base import StreamTranslator
from proxy.relay import StreamEncoder, generated_tokens
from proxy.router import Route
from proxy.schema import ChatCompletion, ChatCompletionChunk, ChatRequest, Usage
from proxy.transport import UpstreamRequest


@dataclass(slots=True)
class Inbound:
    """A client's request: as the gateway works on it, and as the client sent it."""

    chat: ChatRequest  # the internal (chat-completions) shape: limits, budgets, cache, routes
    body: dict[str, Any]  # the client's own body, for routes that speak its API natively
    stream: bool
    headers: Mapping[str, str] = field(default_factory=dict)  # the client's, to pass on natively
    # Set when the request uses what only a native route can do (a hosted tool, say):
    # translated routes are skipped with this reason.
    native_only: str | None = None
    dropped: tuple[str, ...] = ()  # fields translated routes go without (named to the client)
    answer: dict[str, Any] | None = None  # what the client got, once complete (to store it)


@dataclass(slots=True)
class ResponsesInbound(Inbound):
    """A Responses request: its answer's id, and the conversation it continues."""

    response_id: str = ""
    created_at: int = 0
    items: list[Any] = field(default_factory=list)  # this turn's input items
    history: list[Any] = field(default_factory=list)  # previous_response_id's, expanded


class NativeRoute(Protocol):
    """How a route whose provider speaks the client's own API is called: untranslated."""

    def request(
        self, inbound: Inbound, model: str, *, cap: int | None, request_id: str
    ) -> UpstreamRequest: ...

    def answer(
        self, body: bytes, inbound: Inbound, alias: str
    ) -> tuple[dict[str, Any], Usage | None]:
        """The upstream's answer with the alias as its model, and what it bills."""
        ...

    def translator(self) -> StreamTranslator:
        """Reads the upstream's events as they are (for usage and the stream's end)."""
        ...

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder: ...

    def committed(self, event: Any) -> bool:
        """Has the stream produced something the client must see (no fallback after)?"""
        ...


class Dialect(Protocol):
    api: str  # the request log's and the metrics' name for it
    passed_headers: tuple[bytes, ...]  # request headers native routes get (Inbound.headers)

    def parse(self, body: bytes) -> Inbound:
        """Validate the client's body; raise InvalidRequest naming the field."""
        ...

    def render(self, completion: ChatCompletion, inbound: Inbound) -> dict[str, Any]:
        """A translated route's answer (the alias as its model) in the client's shape."""
        ...

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder: ...

    def error(self, error: GatewayError) -> tuple[int, bytes]:
        """The status and body the client's API uses for this error."""
        ...

    def native(self, route: Route, adapter: Any) -> NativeRoute | None:
        """The native way to call this route, when its provider speaks the client's API."""
        ...


class DeltaEncoder:
    """What every encoder of chat chunks into another API's stream shares: the first
    choice's deltas go to `_delta`, the finish reason and the usage are kept as they
    pass, and the tokens generated are estimated for a stream cut short."""

    def __init__(self) -> None:
        self.completion_tokens = 0
        self._finish: str | None = None
        self._usage: Usage | None = None

    def count(self, chunks: list[ChatCompletionChunk]) -> None:
        for chunk in chunks:
            self.completion_tokens += generated_tokens(chunk)

    def encode_all(self, chunks: list[ChatCompletionChunk]) -> bytes:
        out = bytearray(self._start())
        for chunk in chunks:
            self.completion_tokens += generated_tokens(chunk)
            if chunk.get("usage"):
                self._usage = chunk["usage"]
            for choice in chunk["choices"][:1]:  # these APIs have one answer per request
                out += self._delta(choice.get("delta") or {})  # type: ignore[arg-type]
                if choice.get("finish_reason"):
                    self._finish = choice["finish_reason"]
        return bytes(out)

    def _start(self) -> bytes:
        """What opens the stream (once; b"" after)."""
        raise NotImplementedError

    def _delta(self, delta: dict[str, Any]) -> bytes:
        raise NotImplementedError
