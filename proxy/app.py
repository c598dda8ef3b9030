"""The ASGI application: routes, middleware, and the lifespan that builds every service."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.api import api_routes
from proxy.config import DEV_KEY, GatewayConfig
from proxy.dashboard import dashboard_routes
from proxy.dialects.chat import ChatDialect
from proxy.dialects.messages import MessagesDialect
from proxy.endpoints.admin import Reload
from proxy.endpoints.answer import AnswerEndpoint
from proxy.endpoints.basic import Health, ModelList, Ready
from proxy.endpoints.count_tokens import CountTokens
from proxy.endpoints.embeddings import Embeddings
from proxy.endpoints.responses import ResponsesEndpoint, StoredResponses
from proxy.endpoints.scrape import MetricsEndpoint, serve_metrics
from proxy.errors import GatewayError, InternalError, NotFound
from proxy.gateway import Gateway
from proxy.logs import AccessLog
from proxy.metrics import Metrics
from proxy.middleware import RequestIdMiddleware
from proxy.observer import Observer
from proxy.price_table import unpriced_routes
from proxy.services import Services
from proxy.storage.connect import log_writer
from proxy.tracing import open_tracing

log = structlog.get_logger("proxy.app")


# The young generation's collection threshold while serving (CPython's default: 700).
# With 16 requests in flight their live objects alone cross 700, so the collector ran
# every dozen requests and found nothing to free (measured: about 0.2 ms a run, 19 us a
# request). At 7000 it did not run once in 4,000 requests. Objects in reference cycles
# are still collected, a little later; a request leaves none (checked with DEBUG_SAVEALL).
YOUNG_THRESHOLD = 7000
_DEFAULT_THRESHOLDS = gc.get_threshold()


def collector_for_serving() -> Callable[[], None]:
    """Tune the garbage collector for the request path; return what undoes it.

    What start-up built (modules, config, price table, pools) lives as long as the
    process: frozen out of the collector's sight, a full collection no longer walks it
    (about 30 ms each on this heap, every few thousand requests). Undone at stop, for a
    process that goes on (tests run gateways in-process)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *_DEFAULT_THRESHOLDS[1:])

    def undo() -> None:
        gc.set_threshold(*_DEFAULT_THRESHOLDS)
        gc.unfreeze()

    return undo


def build_app(config: GatewayConfig) -> FastPaths:
    metrics = Metrics(per_key_labels=config.metrics.per_key_labels)
    gateway = Gateway(metrics)
    sink = log_writer(config.storage)
    metrics.watch_log_writer(
        lambda: (
            sink.queue_depth,
            sink.rows_written,
            sink.rows_dropped,
            sink.batches_failed,
            sink.rows_dead_lettered,
        )
    )
    observer = Observer(
        metrics,
        sink,
        config.debug_log.max_body_bytes,
        gateway.scrubber,
        AccessLog(config.logging.format, config.logging.level),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Whatever started is stopped again, in reverse, even when a later step fails:
        # a database connection left open would keep the process from exiting.
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(observer.access.flush)  # the last turn's access lines
            # First in, last out: spans of the last requests are exported before exit.
            tracing = open_tracing(config.tracing)
            if tracing is not None:
                stack.push_async_callback(tracing.close)
                observer.tracing = tracing
            await sink.start()
            stack.push_async_callback(sink.close)
            services = await Services.open(config, metrics, gateway.scrubber)
            stack.push_async_callback(services.close)
            gateway.services = services
            gateway.start(config)
            stack.push_async_callback(gateway.aclose)
            metrics_server = serve_metrics(config, metrics)
            if metrics_server is not None:
                stack.callback(metrics_server.server_close)
                stack.callback(metrics_server.shutdown)
            announce(config, gateway)
            reload_on_sighup(gateway)
            stack.callback(collector_for_serving())
            if metrics.multiprocess:
                syncing = asyncio.create_task(metrics.sync_forever())
                stack.callback(syncing.cancel)
            try:
                yield
            finally:
                gateway.shutting_down = True
        log.info("stopped", rows_written=sink.rows_written, rows_dropped=sink.rows_dropped)

    answers: dict[str, ASGIApp] = {
        "/v1/chat/completions": AnswerEndpoint(gateway, observer, ChatDialect()),
        "/v1/messages": AnswerEndpoint(gateway, observer, MessagesDialect()),
        "/v1/messages/count_tokens": CountTokens(gateway, observer),
        "/v1/responses": ResponsesEndpoint(gateway, observer),
        "/v1/embeddings": Embeddings(gateway, observer),
    }
    routes: list[BaseRoute] = [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in answers.items()),
        Route("/v1/responses/{response_id}", StoredResponses(gateway), methods=["GET", "DELETE"]),
        Route("/v1/responses/{response_id}/input_items", StoredResponses(gateway), methods=["GET"]),
        Route("/v1/models", ModelList(gateway), methods=["GET"]),
        Route("/v1/models/{model:path}", ModelList(gateway), methods=["GET"]),
        Route("/healthz", Health(), methods=["GET"]),
        Route("/readyz", Ready(gateway), methods=["GET"]),
        Route("/api/admin/reload", Reload(gateway), methods=["POST"]),
    ]
    routes += api_routes(gateway, docs=config.server.docs)
    if config.server.dashboard:
        routes += dashboard_routes()
    if config.metrics.port == 0:
        endpoint = MetricsEndpoint(metrics, config.metrics.bearer_token)
        routes.append(Route("/metrics", endpoint, methods=["GET"]))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return FastPaths(app, answers)


class FastPaths:
    """The proxied endpoints straight from the server, everything else through Starlette.

    The hot path needs none of Starlette's routing, error middleware or request objects
    (the endpoints answer every error themselves), and skipping them is a measurable share
    of a request's CPU (docs/performance.md). So is the request-id middleware's wrapper
    around `send`: each of these endpoints gives its request its ids itself. The same
    routes stay declared in Starlette, which serves them for any method the fast path does
    not take (a 405).
    """

    def __init__(self, app: Starlette, answers: dict[str, ASGIApp]) -> None:
        self.app = app
        self.state = app.state
        self._answers = answers  # each gives its request its ids (middleware.assign_ids)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._answers.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, in OpenAI's envelope."""
    assert isinstance(exc, HTTPException)
    error: GatewayError
    if exc.status_code == 404:
        error = NotFound(f"no such endpoint: {request.method} {request.url.path}")
    else:
        error = GatewayError(f"{exc.detail}: {request.method} {request.url.path}")
        error.status = exc.status_code
        error.type = "invalid_request_error"
    return envelope_response(error, exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "unknown")
    log.error("unexpected_error", request_id=request_id, exc_info=exc)
    return envelope_response(InternalError(f"internal error; quote request id {request_id}"))


def envelope_response(error: GatewayError, headers: Mapping[str, str] | None = None) -> Response:
    return Response(error.body(), error.status, headers=headers, media_type="application/json")


def reload_on_sighup(gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    except (NotImplementedError, RuntimeError, ValueError):
        log.warning("sighup_reload_unavailable", reason="not in the main thread")


def announce(config: GatewayConfig, gateway: Gateway) -> None:
    runtime = gateway.runtime
    for warning in (*config.warnings, *unpriced_routes(config, gateway.prices)):
        log.warning("config_warning", detail=warning)
    log.info(
        "started",
        config=config.path,
        aliases=sorted(runtime.router.aliases),
        providers=sorted(runtime.providers),
    )
    if any(key.dev_only for key in config.keys):
        alias = next(iter(a for a, x in runtime.router.aliases.items() if x.routes), "demo")
        host = config.server.host if ":" not in config.server.host else f"[{config.server.host}]"
        try_it = (
            f"curl -s http://{host}:{config.server.port}/v1/chat/completions "
            f"-H 'Authorization: Bearer {DEV_KEY}' -H 'Content-Type: application/json' "
            f'-d \'{{"model": "{alias}", "messages": '
            '[{"role": "user", "content": "Hello!"}]}\''
        )
        note = (
            "this key is public and only accepted on loopback, never through a proxy; "
            "remove dev_only keys before exposing the gateway"
        )
        if config.logging.format == "json":
            log.warning("dev_only_key_enabled", note=note, try_it=try_it)
        else:
            # On a line of its own, so it runs when pasted exactly as printed.
            log.warning("dev_only_key_enabled", note=note + "; try it:")
            print(try_it, file=sys.stderr, flush=True)
