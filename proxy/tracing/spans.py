"""The spans of one proxied request and of its upstream attempts: when each starts and
ends, and how its context reaches the upstream (`proxy.tracing.attributes` is what they
say).

An attempt's span starts when its request goes out (the transport asks it for the
`traceparent`), so a route skipped before sending (its adapter cannot express the
request) has none. The attempt that answered stays open until the request ends: for a
stream, that is when the upstream's last event arrived, and its usage is known then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import time_ns
from typing import Any, TypeVar

import structlog
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from proxy.errors import UpstreamFailure, UpstreamHTTPError
from proxy.record import RequestRecord
from proxy.router import Route
from proxy.tracing import OUTBOUND
from proxy.tracing.attributes import (
    OPERATIONS,
    PROVIDER_NAMES,
    Attributes,
    attempt_error_type,
    failed,
    outcome_attributes,
    request_params,
    server_attributes,
    usage_attributes,
)

T = TypeVar("T")
log = structlog.get_logger("proxy.tracing")
PROPAGATOR = TraceContextTextMapPropagator()


class RequestSpan:
    """A request's SERVER span; the RequestTrace the request path holds."""

    __slots__ = (
        "_answer",
        "_answered_ns",
        "context",
        "op",
        "params",
        "span",
        "tracer",
    )

    def __init__(self, tracer: Tracer, parent: Context | None, api: str, path: str) -> None:
        self.tracer = tracer
        self.op = OPERATIONS.get(api, api)
        attributes: Attributes = {"gen_ai.operation.name": self.op, "http.route": path}
        self.span = tracer.start_span(self.op, parent, SpanKind.SERVER, attributes)
        self.context = set_span_in_context(self.span)  # the attempts' parent
        self.params: Attributes = {}  # the request's parameters, on the attempts' spans too
        self._answer: AttemptSpan | None = None
        self._answered_ns = 0

    def describe(self, request: Mapping[str, Any]) -> None:
        if self.span.is_recording():  # an unsampled trace's attempts are unsampled too
            self.params = request_params(request)
            self.span.set_attributes(self.params)

    async def attempt(
        self, route: Route, call: Callable[[Route, float], Awaitable[T]], deadline: float
    ) -> T:
        attempt = AttemptSpan(self, route)
        token = OUTBOUND.set(attempt)
        try:
            result = await call(route, deadline)
        except BaseException as exc:
            attempt.fail(exc)
            raise
        finally:
            OUTBOUND.reset(token)
        attempt.succeed()
        self._answer, self._answered_ns = attempt, time_ns()
        return result

    def end(self, record: RequestRecord) -> None:
        try:
            self._end(record)
        except Exception:  # a tracing fault must never become the request's
            log.exception("trace_failed", request_id=record.request_id)

    def _end(self, record: RequestRecord) -> None:
        span, answer = self.span, self._answer
        if answer is not None and answer.span is not None:
            answered = answer.span
            if answered.is_recording():
                answered.set_attributes(usage_attributes(record))
                if record.error_type == "upstream_stream_error":  # it broke after it began
                    answered.set_attribute("error.type", "stream_broken")
                    answered.set_status(Status(StatusCode.ERROR, "stream_broken"))
            answered.end(None if record.stream else self._answered_ns)
        if span.is_recording():
            if record.alias is not None:
                span.update_name(f"{self.op} {record.alias}")
            provider = None if answer is None else answer.provider_name
            attributes = outcome_attributes(record, provider)
            span.set_attributes(attributes)
            if failed(record):
                span.set_status(Status(StatusCode.ERROR, str(attributes.get("error.type"))))
        span.end()


class AttemptSpan:
    """One upstream attempt's CLIENT span, started when its request goes out."""

    __slots__ = ("_request", "_route", "_started_ns", "provider_name", "span")

    def __init__(self, request: RequestSpan, route: Route) -> None:
        self._request = request
        self._route = route
        self._started_ns = time_ns()
        provider = route.provider
        self.provider_name = PROVIDER_NAMES.get(provider.config.type, provider.name)
        self.span: Span | None = None

    def headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        span = self.span or self._start(time_ns())
        carrier = dict(headers)
        PROPAGATOR.inject(carrier, set_span_in_context(span))
        return carrier

    def _start(self, at_ns: int) -> Span:
        request, route = self._request, self._route
        attributes: Attributes = {
            **request.params,
            "gen_ai.operation.name": request.op,
            "gen_ai.provider.name": self.provider_name,
            "gen_ai.request.model": route.model,
            "llm_gateway.route": route.label,
        }
        attributes.update(server_attributes(route.provider.config.base_url))
        self.span = request.tracer.start_span(
            f"{request.op} {route.model}",
            request.context,
            SpanKind.CLIENT,
            attributes,
            start_time=at_ns,
        )
        return self.span

    def succeed(self) -> None:
        span = self.span or self._start(self._started_ns)  # an in-process (mock) upstream
        span.set_attribute("http.response.status_code", 200)

    def fail(self, exc: BaseException) -> None:
        span = self.span
        if span is None:
            if not isinstance(exc, UpstreamFailure):
                return  # nothing was sent: a route skipped, or a request cancelled first
            span = self._start(self._started_ns)
        error = attempt_error_type(exc)
        span.set_attribute("error.type", error)
        if isinstance(exc, UpstreamHTTPError):
            span.set_attribute("http.response.status_code", exc.detail.status)
            if exc.rate_limited:
                span.set_attribute("llm_gateway.rate_limited", True)
        span.set_status(Status(StatusCode.ERROR, error))
        span.end()
