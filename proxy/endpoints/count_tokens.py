"""POST /v1/messages/count_tokens: how many input tokens a Messages request would bill.

The alias's first route answers when it is Claude (Anthropic's own count_tokens
endpoint, which is free); otherwise, or when that call fails, the gateway's estimate of
the prompt (`proxy.estimate.estimate_prompt_tokens`: a token per four ASCII characters
and per other character, plus message framing). `x-gateway-token-count` says which.
Counting bills nothing: it counts against a key's requests per minute, not its budget
or tokens, and Claude's answers to it leave the route's circuit alone.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from proxy.asgi import send_response
from proxy.dialects.base import Inbound
from proxy.dialects.messages_request import to_chat_request
from proxy.dialects.messages_response import anthropic_error
from proxy.endpoints.proxied import Call, ProxiedEndpoint, gateway_headers, note_route
from proxy.errors import (
    Fault,
    GatewayError,
    UpstreamFailure,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamRequestError,
)
from proxy.estimate import estimate_prompt_tokens
from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.base import count, load_object
from proxy.router import Route
from proxy.validation import parse_json_object

log = structlog.get_logger("proxy.endpoints.count_tokens")


class CountTokens(ProxiedEndpoint):
    api = "count_tokens"
    billed = False

    def parse(self, body: bytes) -> Inbound:
        data = parse_json_object(body)
        translated = to_chat_request(data, counting=True)
        return Inbound(translated.chat, data, False)  # type: ignore[arg-type]

    def internal(self, parsed: Inbound) -> dict[str, Any]:
        return parsed.chat  # type: ignore[return-value]

    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        return anthropic_error(error)

    async def serve(self, call: Call, inbound: Inbound) -> None:
        record = call.record
        routes = call.runtime.router.plan(call.alias)
        counted: int | None = None
        if routes and isinstance(call.adapter(routes[0]), AnthropicAdapter):
            counted = await self._ask(call, inbound, routes[0])
        source = "provider" if counted is not None else "estimate"
        if counted is None:
            counted = estimate_prompt_tokens(inbound.chat)
        record.status = 200
        call.watcher.stop()
        headers = [*gateway_headers(record), (b"x-gateway-token-count", source.encode())]
        await send_response(call.send, 200, orjson.dumps({"input_tokens": counted}), headers)

    async def _ask(self, call: Call, inbound: Inbound, route: Route) -> int | None:
        """Claude's own count; None (so: the estimate) when the route cannot answer. The
        call stays out of the route's health: counting must not open its circuit."""
        adapter = call.adapter(route)
        assert isinstance(adapter, AnthropicAdapter)
        beta = next((v for k, v in call.scope["headers"] if k == b"anthropic-beta"), None)
        upstream = adapter.native_request(
            {**inbound.body, "model": route.model},
            request_id=call.record.request_id,
            beta=None if beta is None else beta.decode("latin-1"),
            path="/count_tokens",
        )

        async def ask(route: Route, deadline: float) -> int:
            response = await route.provider.transport.send(upstream, deadline)
            body = await response.read()
            if response.status != 200:
                raise adapter.error(response.status, body, response.headers)
            tokens = load_object(body).get("input_tokens")
            if not isinstance(tokens, int):
                raise UpstreamProtocolError("count_tokens answered without input_tokens")
            return tokens

        trace = call.record.trace
        try:
            if trace is None:
                tokens = await ask(route, call.deadline)
            else:
                tokens = await trace.attempt(route, ask, call.deadline)
        except UpstreamFailure as failure:
            # The request itself is wrong: say why.
            if isinstance(failure, UpstreamHTTPError) and failure.fault is Fault.REQUEST:
                failure.redact(call.runtime.scrubber.scrub)
                detail = failure.detail
                raise UpstreamRequestError(
                    detail.status, detail.message, param=detail.param
                ) from None
            log.warning(
                "count_tokens_estimated", request_id=call.record.request_id, reason=failure.reason
            )
            return None
        note_route(call.record, route, ())
        return count(tokens)
