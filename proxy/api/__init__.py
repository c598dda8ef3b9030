"""The management and analytics API under /api/, and its OpenAPI document."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from proxy.api import accounts, budget, catalog, credentials, usage
from proxy.api.openapi import docs_page, document
from proxy.api.routing import Endpoint, routes
from proxy.gateway import Gateway

ENDPOINTS: list[Endpoint] = [
    *catalog.ENDPOINTS,
    *accounts.ENDPOINTS,
    *budget.ENDPOINTS,
    *credentials.ENDPOINTS,
    *usage.ENDPOINTS,
]


def api_routes(gateway: Gateway, docs: bool = True) -> list[BaseRoute]:
    """The /api/ endpoints; with `docs`, also /openapi.json and the /docs page."""
    spec = document(ENDPOINTS)
    spec_body = orjson.dumps(spec)
    page = docs_page(spec)

    async def openapi(request: Request) -> Response:
        return Response(spec_body, media_type="application/json")

    async def docs_view(request: Request) -> Response:
        return HTMLResponse(page)

    documentation: list[BaseRoute] = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs_view, methods=["GET"]),
    ]
    return [*routes(gateway, ENDPOINTS), *(documentation if docs else [])]
