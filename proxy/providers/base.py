"""The provider seam: a pure-translation adapter plus a transport, bundled per provider.

An adapter does no I/O. It turns an OpenAI request into the upstream's request, and the
upstream's body, stream events and errors back into OpenAI shapes; the router and the
failover loop never see a provider's wire format or name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

from proxy.config import ProviderConfig
from proxy.errors import (
    UpstreamHTTPError,
    UpstreamProtocolError,
)
from proxy.pricing import MAX_COUNT
from proxy.schema import ChatCompletion, ChatCompletionChunk, ChatRequest, EmbeddingsRequest, Usage
from proxy.transport import SSEEvent, Transport, UpstreamRequest


class StreamTranslator(Protocol):
    """Turns one upstream stream, event by event, into OpenAI chunks."""

    # The upstream's usage: final once `finished`; before that, whatever it has reported
    # so far (Anthropic and Gemini report the prompt at the start), else None.
    usage: Usage | None
    finished: bool  # the upstream's own end-of-stream marker has been seen

    def translate(self, event: SSEEvent) -> list[ChatCompletionChunk]:
        """Chunks for one event; raises UpstreamFailure for an error event or garbage."""
        ...


class Adapter(Protocol):
    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, request_id: str
    ) -> UpstreamRequest: ...

    def chat_response(self, body: bytes) -> ChatCompletion: ...

    def stream_translator(self) -> StreamTranslator: ...

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError: ...


@runtime_checkable
class EmbeddingsAdapter(Protocol):
    """An adapter whose provider also has an embeddings API."""

    def embeddings_request(
        self, request: EmbeddingsRequest, model: str, *, request_id: str
    ) -> UpstreamRequest:
        """The upstream request; always asks for float vectors unless passing through."""
        ...

    def embeddings_response(self, body: bytes, request: EmbeddingsRequest) -> dict[str, Any]:
        """OpenAI's embeddings list shape, in the encoding the client asked for."""
        ...


@dataclass(frozen=True, slots=True)
class Provider:
    """One `[providers.NAME]` entry, ready to serve."""

    name: str
    config: ProviderConfig
    adapter: Adapter
    transport: Transport


def count(value: Any) -> int:
    """An upstream's token count, clamped to [0, MAX_COUNT]; anything else is 0."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value  # nearly every count: no clamping, no conversion
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return 0
    return int(min(max(value, 0), MAX_COUNT))


def clean_usage(usage: Any) -> Usage | None:
    """An OpenAI-shaped usage object with every count clamped (nested details too)."""
    if not isinstance(usage, dict):
        return None
    cleaned: dict[str, Any] = {}
    for name, value in usage.items():
        if type(value) is int and 0 <= value <= MAX_COUNT:
            cleaned[name] = value  # nearly every count
        elif isinstance(value, dict):
            cleaned[name] = {
                k: count(v) if isinstance(v, int | float) else v for k, v in value.items()
            }
        elif isinstance(value, int | float) and not isinstance(value, bool):
            cleaned[name] = count(value)
        else:
            cleaned[name] = value
    return cleaned  # type: ignore[return-value]


def load_object(body: bytes) -> dict[str, Any]:
    """An upstream body or event that must be a JSON object; anything else is garbage."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"upstream sent invalid JSON: {body[:200]!r}") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("upstream sent JSON that is not an object")
    return data
