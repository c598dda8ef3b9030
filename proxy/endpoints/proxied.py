"""What every proxied endpoint shares: the request's life from arrival to its log row.

arrival -> authenticate -> read and parse the body -> resolve the alias -> the endpoint's
own work (under a disconnect watcher) -> one error envelope for anything raised -> report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, TypeVar

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from proxy.accounting import settle, settle_estimated
from proxy.accounts.ownkeys import OwnKeys
from proxy.asgi import (
    ClientDisconnected,
    DisconnectWatcher,
    Headers,
    read_body,
    request_id,
    send_response,
)
from proxy.auth import Principal, authenticate
from proxy.errors import GatewayError, InternalError, UpstreamFailure
from proxy.estimate import estimate_prompt_tokens
from proxy.frozen import frozen
from proxy.gateway import Gateway, Runtime
from proxy.middleware import assign_ids
from proxy.observer import Observer
from proxy.pricing import usd
from proxy.providers.base import Adapter
from proxy.record import RequestRecord
from proxy.router import Alias, Route
from proxy.schema import Usage
from proxy.transport import UpstreamRequest

log = structlog.get_logger("proxy.endpoints")
T = TypeVar("T")


@dataclass(slots=True)
class Call:
    """One client request on its way through an endpoint."""

    runtime: Runtime
    principal: Principal
    record: RequestRecord
    alias: Alias
    deadline: float  # loop time
    scope: Scope
    send: Send
    watcher: DisconnectWatcher
    own_keys: OwnKeys | None = None
    caps: Mapping[Route, int] = field(default_factory=dict)  # output caps the gateway set

    def request_for(self, route: Route, request: T) -> T:
        """The request as this route gets it: with the gateway's output cap, if it set one
        (the adapter sends it in whichever field the provider reads)."""
        cap = self.caps.get(route)
        if cap is None:
            return request
        capped: dict[str, Any] = {**request}  # type: ignore[dict-item]
        capped.pop("max_tokens", None)
        capped["max_completion_tokens"] = cap
        return capped  # type: ignore[return-value]

    def adapter(self, route: Route) -> Adapter:
        """The route's adapter, with the caller's own provider key when they stored one."""
        if self.own_keys is None:
            return route.provider.adapter
        return self.own_keys.adapter(self.principal.owner, route.provider)


class ProxiedEndpoint:
    api = ""  # the log's and the metrics' name for this API
    # What no provider bills (token counting) counts against requests per minute only.
    billed = True

    def __init__(self, gateway: Gateway, observer: Observer) -> None:
        self._gateway = gateway
        self._observer = observer

    def parse(self, body: bytes) -> Any:
        """The validated request; raises InvalidRequest."""
        raise NotImplementedError

    async def prepare(self, principal: Principal, parsed: Any) -> None:
        """Complete the request from stored state before limits see it (a Responses
        request's previous_response_id, say)."""

    def internal(self, parsed: Any) -> dict[str, Any]:
        """The parsed request in the shape limits, budgets and routing work on."""
        return parsed  # type: ignore[no-any-return]

    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        """How this endpoint's API words an error: OpenAI's envelope unless it says."""
        return error.status, error.body()

    async def serve(self, call: Call, request: Any) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        id_headers = assign_ids(scope)  # served without the middleware (app.FastPaths)
        record = RequestRecord(
            request_id(scope), perf_counter(), api=self.api, arrived_at=time.time()
        )
        record.id_headers = id_headers
        record.client_request_id = scope["state"].get("client_request_id")
        tracing = self._observer.tracing
        if tracing is not None:
            record.trace = tracing.start(scope, self.api)
        runtime = self._gateway.runtime
        runtime.active += 1
        in_flight = self._observer.metrics.in_flight
        in_flight.inc()
        try:
            await self._handle(runtime, scope, receive, send, record)
        except GatewayError as error:
            record.status, record.error_type = error.status, error.type
            record.error_message = error.message
            await self._send_error(send, error, record)
        except ClientDisconnected:
            record.client_disconnected = True
            record.status = record.status or 499
        except Exception:
            log.exception("unexpected_error", request_id=record.request_id)
            internal = InternalError(f"internal error; quote request id {record.request_id}")
            record.status, record.error_type, record.error_message = 500, internal.type, "internal"
            await self._send_error(send, internal, record)
        finally:
            runtime.active -= 1
            in_flight.dec()
            self._observer.finish(record, scope, runtime.router.aliases)

    async def _send_error(self, send: Send, error: GatewayError, record: RequestRecord) -> None:
        status, body = self.error_response(error)
        extra = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        await send_response(send, status, body, [*gateway_headers(record), *extra])

    async def _handle(
        self, runtime: Runtime, scope: Scope, receive: Receive, send: Send, record: RequestRecord
    ) -> None:
        principal = authenticate(runtime.keys, scope)
        record.key_name, record.key_ref = principal.key_name, principal.key_ref
        record.owner = principal.owner
        record.debug = runtime.config.debug_log.enabled or principal.debug_log
        server = runtime.config.server
        body = await read_body(scope, receive, server.max_request_body_bytes, server.body_timeout_s)
        if record.debug:
            record.request_body = body
        parsed = self.parse(body)
        await self.prepare(principal, parsed)
        request = self.internal(parsed)
        if record.trace is not None:
            record.trace.describe(request)
        user = request.get("user")
        record.end_user = user if isinstance(user, str) else None
        alias = runtime.router.alias(request["model"])
        record.alias = alias.name
        principal.check_alias(alias.name)
        deadline = asyncio.get_running_loop().time() + runtime.config.retry.deadline_s
        services = self._gateway.services
        admission = None
        if services is not None:
            access = services.access
            admission = await (  # 429, 402
                access.admit(principal, alias, request)
                if self.billed
                else access.admit_free(principal)
            )
            record.extra_headers = admission.headers
        try:
            async with DisconnectWatcher(scope, receive) as watcher:
                own_keys = services.own_keys if services is not None else None
                call = Call(
                    runtime,
                    principal,
                    record,
                    alias,
                    deadline,
                    scope,
                    send,
                    watcher,
                    own_keys,
                    admission.caps if admission is not None else {},
                )
                await self.serve(call, parsed)
        except ClientDisconnected:
            if record.tokens is None and record.sent:
                # The provider received the prompt; it bills it, whatever the client did.
                settle_estimated(record, record.sent_price, estimate_prompt_tokens(request), 0)
            raise
        finally:
            if services is not None and admission is not None:
                try:
                    await services.access.settle(admission, record)
                except Exception:  # the answer is already out; never turn it into an error
                    log.exception("settlement_failed", request_id=record.request_id)


@frozen
class Answer:
    """A plain upstream answer: what the client gets, and what the provider bills."""

    route: Route
    body: dict[str, Any]  # in the client's shape, the alias as its model
    usage: Usage | None
    dropped: tuple[str, ...] = ()
    completion: dict[str, Any] | None = None  # the internal (chat) shape, when there is one


@frozen
class Planned:
    """One route's way to answer: the request to send and how to read what comes back."""

    upstream: UpstreamRequest
    # The answer's body (in the client's shape), its usage, and its chat shape if any.
    read: Callable[[bytes], tuple[dict[str, Any], Usage | None, dict[str, Any] | None]]
    error: Callable[[int, bytes, Mapping[str, str]], UpstreamFailure]


async def exchange_plain(call: Call, plan: Callable[[Route], Planned]) -> Answer:
    """A non-streaming exchange: failover over the routes until one answers."""
    record = call.record

    async def attempt(route: Route, deadline: float) -> Answer:
        planned = plan(route)
        started = perf_counter()
        record.sent, record.sent_price = True, route.price
        try:
            response = await route.provider.transport.send(planned.upstream, deadline)
            try:
                body = await response.read()
            except BaseException:
                response.close()
                raise
        finally:
            record.upstream_wait_s += perf_counter() - started
        if response.status != 200:
            raise planned.error(response.status, body, response.headers)
        route.observe_latency(perf_counter() - started)
        answer, usage, completion = planned.read(body)
        return Answer(route, answer, usage, planned.upstream.dropped, completion)

    routes = call.runtime.router.plan(call.alias)
    _, answer = await call.runtime.failover.run(routes, attempt, record, call.deadline)
    return answer


async def respond_plain(call: Call, answer: Answer, body: bytes | None = None) -> None:
    """Account for the answer and send it as one JSON response."""
    record = call.record
    note_route(record, answer.route, answer.dropped, call.caps.get(answer.route))
    if not record.cached:
        settle(record, answer.route.price, answer.usage)
    record.status = 200
    body = orjson.dumps(answer.body) if body is None else body
    if record.debug:
        record.response_body = body
    call.watcher.stop()
    await send_response(call.send, 200, body, gateway_headers(record))


def note_route(
    record: RequestRecord, route: Route, dropped: tuple[str, ...], cap: int | None = None
) -> None:
    record.provider = route.provider.name
    record.route_model = route.model
    record.dropped_params = dropped
    record.output_cap = cap


def gateway_headers(record: RequestRecord) -> Headers:
    overhead_ms = max(0.0, (perf_counter() - record.started - record.upstream_wait_s) * 1000)
    headers: Headers = [
        *record.id_headers,
        (b"x-gateway-attempts", str(len(record.attempts)).encode()),
        (b"x-gateway-overhead-ms", f"{overhead_ms:.3f}".encode()),
    ]
    if record.provider is not None:
        headers.append((b"x-gateway-provider", record.provider.encode()))
    if record.route_model is not None:
        headers.append((b"x-gateway-route-model", record.route_model.encode()))
    if record.tokens is not None:
        cost = "unknown" if record.cost_nano is None else usd(record.cost_nano)
        headers.append((b"x-gateway-cost-usd", cost.encode()))
    if record.skipped:
        skipped = ",".join(f"{s.provider}/{s.model}" for s in record.skipped)
        headers.append((b"x-gateway-skipped-routes", skipped.encode()))
    if record.output_cap is not None:
        headers.append((b"x-gateway-max-tokens", str(record.output_cap).encode()))
    if record.dropped_params:
        headers.append((b"x-gateway-dropped-params", ",".join(record.dropped_params).encode()))
    if record.cache_status is not None:
        headers.append((b"x-cache", record.cache_status.encode()))
        if record.cache_age_s is not None:
            headers.append((b"age", str(int(record.cache_age_s)).encode()))
    headers += [(name.encode(), value.encode()) for name, value in record.extra_headers.items()]
    return headers
