"""The management and analytics API under /api/, and its OpenAPI document."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from proxy.api import account, accounts, budget, catalog, credentials, usage
from proxy.api.openapi import docs_page, document
from proxy.api.routing import Context, Endpoint, routes
from proxy.gateway import Gateway

ENDPOINTS: list[Endpoint] = [
    *catalog.ENDPOINTS,
    *accounts.ENDPOINTS,
    *account.ENDPOINTS,
    *budget.ENDPOINTS,
    *credentials.ENDPOINTS,
    *usage.ENDPOINTS,
]


async def _served_by_reload(ctx: Context) -> None:
    raise AssertionError("POST /api/admin/reload is served by proxy.endpoints.admin.Reload")


# Declared for the document only: the reload endpoint swaps the runtime every other
# endpoint reads, so it is served on its own (proxy.endpoints.admin), not through them.
RELOAD = Endpoint(
    "POST",
    "/api/admin/reload",
    "Re-read gateway.toml and swap it in (as SIGHUP does); an invalid file changes nothing",
    _served_by_reload,
    admin=True,
    example={"status": "reloaded", "aliases": ["fast", "smart"]},
)


def api_routes(gateway: Gateway, docs: bool = True) -> list[BaseRoute]:
    """The /api/ endpoints; with `docs`, also /openapi.json and the /docs page."""
    spec = document([*ENDPOINTS, RELOAD])
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
