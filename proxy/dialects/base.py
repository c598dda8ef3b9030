"""The seams of an inbound dialect: the parsed request, the stream encoder, the dialect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from proxy.errors import GatewayError
from proxy.providers.base import StreamTranslator
from proxy.relay import StreamEncoder
from proxy.router import Route
from proxy.schema import ChatCompletion, ChatRequest, Usage
from proxy.transport import UpstreamRequest


@dataclass(slots=True)
class Inbound:
    """A client's request: as the gateway works on it, and as the client sent it."""

    chat: ChatRequest  # the internal (chat-completions) shape: limits, budgets, cache, routes
    body: dict[str, Any]  # the client's own body, for routes that speak its API natively
    stream: bool
    headers: Mapping[str, str] = field(default_factory=dict)  # the client's, to pass on natively


class NativeRoute(Protocol):
    """How a route whose provider speaks the client's own API is called: untranslated."""

    def request(
        self, inbound: Inbound, model: str, *, cap: int | None, request_id: str
    ) -> UpstreamRequest: ...

    def answer(self, body: bytes, alias: str) -> tuple[dict[str, Any], Usage | None]:
        """The upstream's answer with the alias as its model, and what it bills."""
        ...

    def translator(self) -> StreamTranslator:
        """Reads the upstream's events as they are (for usage and the stream's end)."""
        ...

    def encoder(self, alias: str) -> StreamEncoder: ...

    def committed(self, event: Any) -> bool:
        """Has the stream produced something the client must see (no fallback after)?"""
        ...


class Dialect(Protocol):
    api: str  # the request log's and the metrics' name for it

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
