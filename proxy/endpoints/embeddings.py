"""POST /v1/embeddings: OpenAI's embeddings shape, routed by alias like chat."""

from __future__ import annotations

from typing import Any

from proxy.endpoints.proxied import Call, Planned, ProxiedEndpoint, exchange_plain, respond_plain
from proxy.errors import Fault, UpstreamFailure
from proxy.providers.base import EmbeddingsAdapter
from proxy.router import Route
from proxy.schema import EmbeddingsRequest
from proxy.validation import parse_embeddings_request


class NoEmbeddingsAPI(UpstreamFailure):
    fault = Fault.ROUTE


class Embeddings(ProxiedEndpoint):
    api = "embeddings"

    def parse(self, body: bytes) -> dict[str, Any]:
        return parse_embeddings_request(body)  # type: ignore[return-value]

    async def serve(self, call: Call, request: EmbeddingsRequest) -> None:
        request_id, alias = call.record.request_id, call.alias.name

        def plan(route: Route) -> Planned:
            adapter = embeddings_adapter(call, route)

            def read(body: bytes) -> tuple[dict[str, Any], Any, None]:
                data = adapter.embeddings_response(body, request)
                data["model"] = alias
                return data, data.get("usage"), None

            upstream = adapter.embeddings_request(request, route.model, request_id=request_id)
            return Planned(upstream, read, route.provider.adapter.error)

        await respond_plain(call, await exchange_plain(call, plan))


def embeddings_adapter(call: Call, route: Route) -> EmbeddingsAdapter:
    adapter = call.adapter(route)
    if not isinstance(adapter, EmbeddingsAdapter):
        raise NoEmbeddingsAPI(f"provider {route.provider.name!r} has no embeddings API")
    return adapter
