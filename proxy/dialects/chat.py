"""OpenAI chat completions: the internal model itself, so every translation is the identity."""

from __future__ import annotations

from typing import Any

from proxy.dialects.base import Inbound, NativeRoute
from proxy.errors import GatewayError
from proxy.relay import ChunkEncoder, StreamEncoder
from proxy.router import Route
from proxy.schema import ChatCompletion, wants_usage
from proxy.validation import parse_chat_request


class ChatDialect:
    api = "chat"
    passed_headers: tuple[bytes, ...] = ()

    def parse(self, body: bytes) -> Inbound:
        request = parse_chat_request(body)
        return Inbound(request, request, bool(request.get("stream")))  # type: ignore[arg-type]

    def render(self, completion: ChatCompletion, inbound: Inbound) -> dict[str, Any]:
        return completion  # type: ignore[return-value]

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder:
        return ChunkEncoder(alias, keep_usage=wants_usage(inbound.chat))

    def error(self, error: GatewayError) -> tuple[int, bytes]:
        return error.status, error.body()

    def native(self, route: Route, adapter: Any) -> NativeRoute | None:
        return None  # every adapter already speaks chat completions to its provider
