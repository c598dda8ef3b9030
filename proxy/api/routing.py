"""The management API's plumbing: declared endpoints, scopes, parameters, one error shape.

Each endpoint is declared once, with its method, path, scope, parameters and an example
answer; the same declarations build the Starlette routes and the OpenAPI document, so
the documentation cannot drift from the code.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.asgi import read_body
from proxy.auth import Principal, authenticate
from proxy.errors import GatewayError, InvalidRequest, PermissionDenied
from proxy.gateway import Gateway, Runtime
from proxy.services import Services
from proxy.validation import parse_json_object


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: type = str  # str, int or float
    description: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    location: str = "query"  # "query" or "path"


@dataclass(slots=True)
class Context:
    principal: Principal
    runtime: Runtime
    services: Services
    params: dict[str, Any]
    body: dict[str, Any] | None

    @property
    def admin(self) -> bool:
        return self.principal.admin

    def user_scope(self) -> str | None:
        """None for an admin (every user); else the caller's own user."""
        return None if self.principal.admin else self.principal.owner


Handler = Callable[[Context], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Handler
    admin: bool = False
    params: tuple[Param, ...] = ()
    example: Any = field(default_factory=dict)
    body: Mapping[str, Any] | None = None  # JSON schema of the request body
    status: int = 200
    max_body_bytes: int | None = None  # below server.max_request_body_mb, if smaller


def routes(gateway: Gateway, endpoints: list[Endpoint]) -> list[Route]:
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    return [
        Route(path, _dispatch(gateway, group), methods=[e.method for e in group])
        for path, group in by_path.items()
    ]


def _dispatch(gateway: Gateway, group: list[Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    by_method = {e.method: e for e in group}

    async def handle(request: Request) -> Response:
        endpoint = by_method[request.method]
        try:
            context = await _context(gateway, endpoint, request)
            result = await endpoint.handler(context)
            if endpoint.method != "GET" and gateway.services is not None:
                # A key or user just changed: this process serves it from the next
                # request on (the others notice within their refresh interval).
                await gateway.services.keys.refresh()
        except GatewayError as error:
            return Response(
                error.body(), error.status, headers=error.headers, media_type="application/json"
            )
        return Response(orjson.dumps(result), endpoint.status, media_type="application/json")

    return handle


async def _context(gateway: Gateway, endpoint: Endpoint, request: Request) -> Context:
    runtime = gateway.runtime
    principal = authenticate(runtime.keys, request.scope)
    if endpoint.admin and not principal.admin:
        raise PermissionDenied("this endpoint needs an admin key", code="admin_required")
    services = gateway.services
    if services is None:
        raise GatewayError("the management API needs the database")
    params = {
        p.name: _value(p, request.path_params if p.location == "path" else request.query_params)
        for p in endpoint.params
    }
    body = None
    if endpoint.body is not None:
        server = runtime.config.server
        limit, setting = server.max_request_body_bytes, "server.max_request_body_mb"
        if endpoint.max_body_bytes is not None and endpoint.max_body_bytes < limit:
            limit, setting = endpoint.max_body_bytes, f"the limit of {endpoint.path}"
        raw = await read_body(request.scope, request.receive, limit, server.body_timeout_s, setting)
        body = parse_json_object(raw) if raw else {}
    return Context(principal, runtime, services, params, body)


def _value(param: Param, source: Mapping[str, Any]) -> Any:
    raw = source.get(param.name)
    if raw is None or raw == "":
        if param.required:
            raise InvalidRequest(f"'{param.name}' is required", param=param.name)
        return param.default
    if param.choices and raw not in param.choices:
        raise InvalidRequest(
            f"'{param.name}' must be one of {', '.join(param.choices)}", param=param.name
        )
    try:
        value = param.kind(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(
            f"'{param.name}' must be {'an integer' if param.kind is int else 'a number'}",
            param=param.name,
        ) from None
    # Beyond 2**53 nothing is a sensible page, limit or time (nor fits JSON or SQLite).
    if param.kind is not str and (not math.isfinite(value) or abs(value) > 2**53):
        raise InvalidRequest(f"'{param.name}' is out of range", param=param.name)
    if param.minimum is not None and value < param.minimum:
        raise InvalidRequest(f"'{param.name}' must be at least {param.minimum:g}", param=param.name)
    return value
