"""POST /v1/embeddings: OpenAI's embeddings shape, routed by alias like chat."""

from __future__ import annotations

from typing import Any

from proxy.endpoints.proxied import Call, ProxiedEndpoint, call_plain
from proxy.errors import Fault, UpstreamFailure
from proxy.providers.base import EmbeddingsAdapter
from proxy.router import Route
from proxy.schema import EmbeddingsRequest
from proxy.transport import UpstreamRequest
from proxy.validation import parse_embeddings_request


class NoEmbeddingsAPI(UpstreamFailure):
    fault = Fault.ROUTE


class Embeddings(ProxiedEndpoint):
    endpoint = "embeddings"

    def parse(self, body: bytes) -> dict[str, Any]:
        return parse_embeddings_request(body)  # type: ignore[return-value]

    async def serve(self, call: Call, request: EmbeddingsRequest) -> None:
        request_id = call.record.request_id

        def build(route: Route) -> UpstreamRequest:
            return embeddings_adapter(call, route).embeddings_request(
                request, route.model, request_id=request_id
            )

        def parse(route: Route, body: bytes) -> dict[str, Any]:
            return embeddings_adapter(call, route).embeddings_response(body, request)

        await call_plain(call, build, parse)


def embeddings_adapter(call: Call, route: Route) -> EmbeddingsAdapter:
    adapter = call.adapter(route)
    if not isinstance(adapter, EmbeddingsAdapter):
        raise NoEmbeddingsAPI(f"provider {route.provider.name!r} has no embeddings API")
    return adapter
