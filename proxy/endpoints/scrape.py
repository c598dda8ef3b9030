"""GET /metrics for Prometheus: on the main port, or on a listener of its own.

With `[metrics] bearer_token_env` set, a scrape must carry `Authorization: Bearer <token>`
on either; the separate listener (`[metrics] port`, bound to `[metrics] host`) is how the
shipped deploy config keeps metrics off the public port altogether.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import Receive, Scope, Send

from proxy.asgi import header, send_error
from proxy.config import GatewayConfig
from proxy.errors import AuthenticationFailed
from proxy.metrics import Metrics

UNAUTHORIZED = AuthenticationFailed("this scrape needs the metrics bearer token").body()


def authorized(token: str | None, authorization: str | None) -> bool:
    if token is None:
        return True
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


class MetricsEndpoint:
    """GET /metrics on the main port (when no separate metrics port is set)."""

    def __init__(self, metrics: Metrics, token: str | None) -> None:
        self._metrics = metrics
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not authorized(self._token, header(scope, b"authorization")):
            error = AuthenticationFailed("this scrape needs the metrics bearer token")
            await send_error(send, error)
            return
        body = self._metrics.scrape()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None  # the scrape is not worth an access line


def serve_metrics(config: GatewayConfig, metrics: Metrics) -> WSGIServer | None:
    """The separate listener on `metrics.port`, in a thread of its own."""
    settings = config.metrics
    if settings.port == 0:
        return None
    token = settings.bearer_token

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorized(token, environ.get("HTTP_AUTHORIZATION")):
            start("401 Unauthorized", [("Content-Type", "application/json")])
            return [UNAUTHORIZED]
        start("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [metrics.scrape()]

    host = settings.host or config.server.host
    server = make_server(host, settings.port, app, _ThreadingServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
