"""POST /v1/chat/completions: the hot path, plain and streaming."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import orjson
from starlette.types import Scope

from proxy.accounting import settle, settle_estimated
from proxy.asgi import EVENT_STREAM, NO_BUFFERING, NO_CACHE, header, send_response
from proxy.cache import CachedAnswer, cache_key
from proxy.endpoints.proxied import (
    Call,
    ProxiedEndpoint,
    call_plain,
    exchange_plain,
    gateway_headers,
    note_route,
    respond_plain,
)
from proxy.estimate import estimate_prompt_tokens
from proxy.pricing import TokenCounts
from proxy.record import RequestRecord
from proxy.relay import ChunkEncoder, OpenedStream, open_stream, relay_rest, replay
from proxy.router import Route
from proxy.schema import ChatRequest, wants_usage
from proxy.transport import UpstreamRequest
from proxy.validation import parse_chat_request


class ChatCompletions(ProxiedEndpoint):
    endpoint = "chat"

    def parse(self, body: bytes) -> dict[str, Any]:
        return parse_chat_request(body)  # type: ignore[return-value]

    async def serve(self, call: Call, request: ChatRequest) -> None:
        record = call.record
        record.stream = bool(request.get("stream"))
        services = self._gateway.services
        settings = call.runtime.config.cache
        cache = (
            services.cache
            if services is not None
            and cacheable(call.scope)
            and (deterministic(request) or not settings.deterministic_only)
            else None
        )
        key = ""
        if cache is not None:
            key = cache_key(call.alias.name, cache_scope(call), request)
            hit = cache.get(key)
            record.cache_status = "MISS" if hit is None else "HIT"
            if hit is not None:
                record.cache_age_s = cache.age_s(hit)
                await self._from_cache(call, request, hit)
                return
        if record.stream:
            await self._stream(call, request)
            return
        request_id = record.request_id

        def build(route: Route) -> UpstreamRequest:
            return call.adapter(route).chat_request(
                call.request_for(route, request), route.model, stream=False, request_id=request_id
            )

        def parse(route: Route, body: bytes) -> dict[str, Any]:
            return call.adapter(route).chat_response(body)  # type: ignore[return-value]

        if cache is None:
            await call_plain(call, build, parse)
            return
        answer, shared = await cache.share(key, lambda: exchange_plain(call, build, parse))
        body = orjson.dumps(answer.body)
        if shared:  # another identical request made the call; this one rode along
            price = answer.route.price
            usage = TokenCounts.from_usage(answer.body.get("usage"))
            mark_cached(record, None if price is None else price.cost_nano(usage))
            record.cache_status, record.cache_age_s = "HIT", 0.0
        await respond_plain(call, answer, body)
        if not shared:
            cache.put(
                key,
                answer.body,
                body,
                answer.route.provider.name,
                answer.route.model,
                record.cost_nano,
            )

    async def _from_cache(self, call: Call, request: ChatRequest, hit: CachedAnswer) -> None:
        record = call.record
        mark_cached(record, hit.cost_nano)
        record.provider, record.route_model = hit.provider, hit.route_model
        record.status = 200
        call.watcher.stop()
        if not record.stream:
            if record.debug:
                record.response_body = hit.body
            await send_response(call.send, 200, hit.body, gateway_headers(record))
            return
        headers = [EVENT_STREAM, NO_CACHE, NO_BUFFERING, *gateway_headers(record)]
        await call.send({"type": "http.response.start", "status": 200, "headers": headers})
        record.first_token_s = perf_counter() - record.started
        body = replay(hit.completion, keep_usage=wants_usage(request))
        if record.debug:
            record.response_body = body
        await call.send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stream(self, call: Call, request: ChatRequest) -> None:
        record = call.record

        async def attempt(route: Route, deadline: float) -> OpenedStream:
            routed = call.request_for(route, request)
            return await open_stream(route, call.adapter(route), routed, record, deadline)

        routes = call.runtime.router.plan(call.alias)
        route, opened = await call.runtime.failover.run(routes, attempt, record, call.deadline)
        note_route(record, route, opened.dropped, call.caps.get(route))
        encoder = ChunkEncoder(call.alias.name, keep_usage=wants_usage(request))
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
                    estimate_prompt_tokens(request),
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
