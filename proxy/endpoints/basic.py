"""Small endpoints: the model list, health and readiness, and the not-found fallback."""

from __future__ import annotations

import time
from wsgiref.simple_server import WSGIServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.types import Receive, Scope, Send

from proxy.asgi import header, send_error, send_response
from proxy.auth import authenticate
from proxy.config import GatewayConfig
from proxy.errors import GatewayError, NotFound
from proxy.gateway import Gateway
from proxy.metrics import Metrics


class ModelList:
    """GET /v1/models: the aliases the calling key may use, in OpenAI's list shape."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._created = int(time.time())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self._gateway.runtime
        try:
            principal = authenticate(runtime.keys, header(scope, b"authorization"))
        except GatewayError as error:
            await send_error(send, error)
            return
        data = [
            {"id": name, "object": "model", "created": self._created, "owned_by": "llm-gateway"}
            for name in runtime.router.aliases
            if principal.may_use(name)
        ]
        await send_response(send, 200, orjson.dumps({"object": "list", "data": data}))


class Health:
    """GET /healthz: the process is alive."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b'{"status":"ok"}')


class Ready:
    """GET /readyz: config loaded, at least one route usable, not shutting down."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        if gateway.shutting_down:
            await send_response(send, 503, b'{"status":"shutting_down"}')
        elif not gateway.started or not gateway.runtime.ready():
            await send_response(send, 503, b'{"status":"no_usable_route"}')
        else:
            await send_response(send, 200, b'{"status":"ready"}')


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send_error(send, NotFound(f"no such endpoint: {scope['method']} {scope['path']}"))


class MetricsEndpoint:
    """GET /metrics in Prometheus' text format (when no separate metrics port is set)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = generate_latest(self._metrics.registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def serve_metrics(config: GatewayConfig, metrics: Metrics) -> WSGIServer | None:
    """A separate /metrics listener on `metrics.port`, in prometheus_client's own thread."""
    if config.metrics.port == 0:
        return None
    server, _thread = start_http_server(
        config.metrics.port, addr=config.server.host, registry=metrics.registry
    )
    return server
