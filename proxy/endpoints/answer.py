"""A model's answer, plain or streamed, in the client's dialect: POST /v1/chat/completions,
/v1/responses and /v1/messages are this one endpoint with three dialects.

Each route is called either natively (its provider speaks the client's own API) or
through its adapter on the internal model, which the dialect then renders. Cache,
failover, relay and accounting are the same for all three.
"""

from __future__ import annotations

import time
from dataclasses import replace
from time import perf_counter
from typing import Any

import orjson
from starlette.types import Scope

from proxy.accounting import settle, settle_estimated
from proxy.asgi import EVENT_STREAM, NO_BUFFERING, NO_CACHE, header, send_response
from proxy.cache import CachedAnswer, cache_key
from proxy.dialects.base import Dialect, Inbound, ResponsesInbound
from proxy.endpoints.proxied import (
    Answer,
    Call,
    Planned,
    ProxiedEndpoint,
    exchange_plain,
    gateway_headers,
    note_route,
    respond_plain,
)
from proxy.errors import GatewayError, InvalidRequest
from proxy.estimate import estimate_prompt_tokens
from proxy.gateway import Gateway
from proxy.observer import Observer
from proxy.pricing import TokenCounts
from proxy.providers.base import Adapter
from proxy.record import RequestRecord
from proxy.relay import (
    OpenedStream,
    StreamEncoder,
    completion_chunks,
    open_upstream,
    relay_rest,
)
from proxy.router import Route
from proxy.schema import ChatRequest
from proxy.transport import UpstreamRequest


class AnswerEndpoint(ProxiedEndpoint):
    def __init__(self, gateway: Gateway, observer: Observer, dialect: Dialect) -> None:
        super().__init__(gateway, observer)
        self.dialect = dialect
        self.api = dialect.api

    def parse(self, body: bytes) -> Inbound:
        return self.dialect.parse(body)

    def internal(self, parsed: Inbound) -> dict[str, Any]:
        return parsed.chat  # type: ignore[return-value]

    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        return self.dialect.error(error)

    async def serve(self, call: Call, inbound: Inbound) -> None:
        record = call.record
        record.stream = inbound.stream
        if self.dialect.passed_headers:
            wanted = self.dialect.passed_headers
            inbound.headers = {
                name.decode(): value.decode("latin-1")
                for name, value in call.scope["headers"]
                if name in wanted
            }
        services = self._gateway.services
        settings = call.runtime.config.cache
        cache = (
            services.cache
            if services is not None
            and cacheable(call.scope)
            and (deterministic(inbound.chat) or not settings.deterministic_only)
            else None
        )
        key = ""
        if cache is not None:
            scope = f"{cache_scope(call)}|{self.dialect.api}"
            # Another API's request says more than its chat shape (hosted tools, fields
            # only its native routes read): its own body is what must match.
            shape = inbound.chat if self.dialect.api == "chat" else inbound.body
            key = cache_key(call.alias.name, scope, shape)
            hit = await cache.get(key)
            record.cache_status = "MISS" if hit is None else "HIT"
            if hit is not None:
                await self._from_cache(call, inbound, hit)
                return
        if inbound.stream:
            await self._stream(call, inbound)
            return

        def plan(route: Route) -> Planned:
            return self._plan(call, inbound, route)

        if cache is None:
            answer = await exchange_plain(call, plan)
            inbound.answer = answer.body
            await respond_plain(call, answer)
            return

        async def produce() -> Answer:
            """Ask, and keep the answer for those asking the same (before the client
            gets it, so no identical request in any process asks again meanwhile)."""
            answer = await exchange_plain(call, plan)
            if answer.completion is not None:  # native answers are not kept
                price = answer.route.price
                cost = (
                    None if price is None else price.cost_nano(TokenCounts.from_usage(answer.usage))
                )
                await cache.put(
                    key,
                    answer.completion,
                    orjson.dumps(answer.body),
                    answer.route.provider.name,
                    answer.route.model,
                    cost,
                )
            return answer

        result, shared = await cache.share(key, produce)
        if isinstance(result, CachedAnswer):  # another process asked, and answered meanwhile
            record.cache_status = "HIT"
            await self._from_cache(call, inbound, result)
            return
        answer = result
        if shared and self.dialect.api != "chat":
            answer = replace(answer, body=self._own_copy(answer, inbound))
        inbound.answer = answer.body
        body = orjson.dumps(answer.body)
        if shared:  # another identical request made the call; this one rode along
            price = answer.route.price
            usage = TokenCounts.from_usage(answer.usage)
            mark_cached(record, None if price is None else price.cost_nano(usage))
            record.cache_status, record.cache_age_s = "HIT", 0.0
        await respond_plain(call, answer, body)

    def _plan(self, call: Call, inbound: Inbound, route: Route) -> Planned:
        """How one route answers a plain request: natively, or translated."""
        adapter = call.adapter(route)
        request_id, alias = call.record.request_id, call.alias.name
        native = self.dialect.native(route, adapter)
        if native is not None:
            upstream = native.request(
                inbound, route.model, cap=call.caps.get(route), request_id=request_id
            )

            def read_native(body: bytes) -> tuple[dict[str, Any], Any, None]:
                answer, usage = native.answer(body, inbound, alias)
                return answer, usage, None

            return Planned(upstream, read_native, adapter.error)
        upstream = self._translated(call, inbound, route, adapter, stream=False)

        def read(body: bytes) -> tuple[dict[str, Any], Any, dict[str, Any]]:
            completion: dict[str, Any] = adapter.chat_response(body)  # type: ignore[assignment]
            completion["model"] = alias
            rendered = self.dialect.render(completion, inbound)  # type: ignore[arg-type]
            return rendered, completion.get("usage"), completion

        return Planned(upstream, read, adapter.error)

    def _own_copy(self, answer: Answer, inbound: Inbound) -> dict[str, Any]:
        """Another request's answer, as this request's own (its own ids)."""
        if answer.completion is not None:
            return self.dialect.render(answer.completion, inbound)  # type: ignore[arg-type]
        body = dict(answer.body)
        if isinstance(inbound, ResponsesInbound):
            body["id"] = inbound.response_id  # the rest matches: the bodies did
        return body

    def _translated(
        self, call: Call, inbound: Inbound, route: Route, adapter: Adapter, *, stream: bool
    ) -> UpstreamRequest:
        """The route's request through its adapter, from the internal chat request."""
        if inbound.native_only is not None:
            raise InvalidRequest(inbound.native_only)  # this route is skipped, the next tried
        request = call.request_for(route, inbound.chat)
        upstream = adapter.chat_request(
            request, route.model, stream=stream, request_id=call.record.request_id
        )
        if inbound.dropped:
            upstream = replace(upstream, dropped=upstream.dropped + inbound.dropped)
        return upstream

    async def _from_cache(self, call: Call, inbound: Inbound, hit: CachedAnswer) -> None:
        record = call.record
        record.cache_age_s = max(0.0, time.time() - hit.stored_at)
        mark_cached(record, hit.cost_nano)
        record.provider, record.route_model = hit.provider, hit.route_model
        record.status = 200
        call.watcher.stop()
        if not record.stream:
            if self.dialect.api == "chat":
                body = hit.body
            else:
                inbound.answer = self.dialect.render(hit.completion, inbound)  # type: ignore[arg-type]
                body = orjson.dumps(inbound.answer)
            if record.debug:
                record.response_body = body
            await send_response(call.send, 200, body, gateway_headers(record))
            return
        headers = [EVENT_STREAM, NO_CACHE, NO_BUFFERING, *gateway_headers(record)]
        await call.send({"type": "http.response.start", "status": 200, "headers": headers})
        record.first_token_s = perf_counter() - record.started
        encoder = self.dialect.encoder(inbound, call.alias.name)
        body = encoder.encode_all(completion_chunks(hit.completion)) + encoder.finish()
        if record.debug:
            record.response_body = body
        await call.send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stream(self, call: Call, inbound: Inbound) -> None:
        record, alias = call.record, call.alias.name

        async def attempt(route: Route, deadline: float) -> tuple[OpenedStream, StreamEncoder]:
            adapter = call.adapter(route)
            native = self.dialect.native(route, adapter)
            if native is not None:
                upstream = native.request(
                    inbound, route.model, cap=call.caps.get(route), request_id=record.request_id
                )
                opened = await open_upstream(
                    route,
                    upstream,
                    native.translator(),
                    adapter.error,
                    record,
                    deadline,
                    native.committed,
                )
                return opened, native.encoder(inbound, alias)
            upstream = self._translated(call, inbound, route, adapter, stream=True)
            opened = await open_upstream(
                route, upstream, adapter.stream_translator(), adapter.error, record, deadline
            )
            return opened, self.dialect.encoder(inbound, alias)

        routes = call.runtime.router.plan(call.alias)
        route, (opened, encoder) = await call.runtime.failover.run(
            routes, attempt, record, call.deadline
        )
        note_route(record, route, opened.dropped, call.caps.get(route))
        record.status = 200
        headers = [EVENT_STREAM, NO_CACHE, NO_BUFFERING, *gateway_headers(record)]
        await call.send({"type": "http.response.start", "status": 200, "headers": headers})
        record.first_token_s = perf_counter() - record.started
        try:
            await relay_rest(
                opened,
                encoder,
                record,
                call.send,
                call.watcher,
                call.runtime.scrubber.scrub,
                call.runtime.config.budgets.usage_drain_s,
            )
        finally:
            translator = opened.translator
            if translator.finished and translator.usage:
                settle(record, route.price, translator.usage)
            else:
                settle_estimated(
                    record,
                    route.price,
                    estimate_prompt_tokens(inbound.chat),
                    encoder.completion_tokens,
                    translator.usage,
                )


def deterministic(request: ChatRequest) -> bool:
    """A request whose answer is meant to be the same every time: temperature 0, or a
    seed (OpenAI's reproducible sampling). Anything else asks for a fresh sample."""
    fields: dict[str, Any] = request  # type: ignore[assignment]
    return fields.get("temperature") == 0 or fields.get("seed") is not None


def cacheable(scope: Scope) -> bool:
    """Clients opt out per request with Cache-Control: no-cache or no-store."""
    directives = (header(scope, b"cache-control") or "").lower()
    return "no-cache" not in directives and "no-store" not in directives


def cache_scope(call: Call) -> str:
    """Whose answers a request may share: one user's are never served to another."""
    scope = call.runtime.config.cache.scope
    principal = call.principal
    if scope == "global":
        return "global"
    if scope == "user" and principal.owner is not None:
        return f"user:{principal.owner}"
    return principal.key_ref


def mark_cached(record: RequestRecord, saved_nano: int | None) -> None:
    record.cached = True
    record.tokens = TokenCounts()
    record.cost_nano = 0
    record.saved_cost_nano = saved_nano or 0
