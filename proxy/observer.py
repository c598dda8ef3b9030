"""What happens when a request ends: metrics, the request-log row, the access line.

Runs on the request path, so it only counts, enqueues and prints: the log row goes to the
sink's in-memory queue and is written to disk by the sink's own background task.
"""

from __future__ import annotations

import time
from collections.abc import Container
from time import perf_counter

from starlette.types import Scope

from proxy.logs import AccessLog
from proxy.metrics import Metrics
from proxy.record import RequestRecord
from proxy.redaction import redact_headers, truncate
from proxy.scrubber import Scrubber
from proxy.storage.base import LogSink
from proxy.storage.rows import DebugRow, FailedAttempt, RequestRow
from proxy.tracing import Tracing


class Observer:
    def __init__(
        self,
        metrics: Metrics,
        sink: LogSink | None,
        max_body_bytes: int,
        scrubber: Scrubber | None = None,
        access: AccessLog | None = None,
    ) -> None:
        self.metrics = metrics
        self.sink = sink
        self._max_body_bytes = max_body_bytes
        self._scrubber = scrubber or Scrubber()
        self.access = access or AccessLog()
        # Set at start-up when [tracing] is on; requests then start their spans with it.
        self.tracing: Tracing | None = None

    def finish(self, record: RequestRecord, scope: Scope, aliases: Container[str]) -> None:
        """Called once per answered request; must never block or raise."""
        duration_s = perf_counter() - record.started
        self.metrics.observe(record, aliases, duration_s)
        row = request_row(record, scope, duration_s)
        if self.sink is not None:
            debug = self._debug_row(record, scope) if record.debug else None
            self.sink.enqueue(row, debug)
        self.access.write(
            {
                "request_id": row.request_id,
                "api": row.api,
                "key": row.key_name,
                "alias": row.alias,
                "provider": row.provider,
                "route_model": row.route_model,
                "status": row.http_status,
                "outcome": row.outcome,
                "error": row.error_message,
                "attempts": row.attempts,
                "skipped": [f"{s.provider}/{s.model}: {s.reason}" for s in record.skipped] or None,
                "stream": row.streamed,
                "cached": row.cached or None,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "usage_estimated": row.usage_estimated or None,
                "cost_nano": row.cost_nano,
                "latency_ms": row.latency_ms,
                "ttft_ms": row.ttft_ms,
                "overhead_ms": row.overhead_ms,
            }
        )
        if record.trace is not None:
            record.trace.end(record)

    def _debug_row(self, record: RequestRecord, scope: Scope) -> DebugRow:
        limit = self._max_body_bytes
        request_body, cut_request = truncate(record.request_body, limit)
        response_body, cut_response = truncate(record.response_body, limit)
        scrub = self._scrubber.scrub
        return DebugRow(
            request_id=record.request_id,
            ts=record.arrived_at,
            request_headers=redact_headers(scope["headers"]),
            request_body=scrub(request_body),
            response_headers={},
            response_body=scrub(response_body),
            truncated=cut_request or cut_response,
        )


# Headers the request log keeps, read in one pass over the request's headers.
_LOGGED_HEADERS = {
    b"x-gateway-tenant": 0,
    b"x-gateway-user": 1,
    b"x-gateway-agent": 2,
    b"user-agent": 3,
}


def logged_headers(scope: Scope) -> list[str | None]:
    """The tenant, user, agent and user agent the caller sent (the first of each)."""
    found: list[str | None] = [None, None, None, None]
    for name, value in scope["headers"]:
        index = _LOGGED_HEADERS.get(name)
        if index is not None and found[index] is None:
            found[index] = value.decode("latin-1")
    return found


def request_row(record: RequestRecord, scope: Scope, duration_s: float) -> RequestRow:
    tokens = record.tokens
    client = scope.get("client")
    tenant, end_user, agent, user_agent = logged_headers(scope)
    return RequestRow(
        request_id=record.request_id,
        ts=record.arrived_at or time.time() - duration_s,
        api=record.api,
        key_name=record.key_name,
        key_ref=record.key_ref,
        client_request_id=record.client_request_id,
        owner=record.owner,
        tenant=tenant,
        end_user=end_user or record.end_user,
        agent=agent,
        alias=record.alias,
        provider=record.provider,
        route_model=record.route_model,
        attempts=len(record.attempts),
        failed_attempts=tuple(
            FailedAttempt(a.provider, a.model, a.outcome, a.status)
            for a in record.attempts
            if a.outcome != "ok"
        )
        + tuple(
            FailedAttempt(s.provider, s.model, f"skipped: {s.reason}", None) for s in record.skipped
        ),
        outcome=_outcome(record),
        http_status=record.status,
        error_type=record.error_type,
        error_message=record.error_message,
        streamed=record.stream,
        cached=record.cached,
        prompt_tokens=tokens.prompt if tokens else 0,
        completion_tokens=tokens.completion if tokens else 0,
        cached_tokens=tokens.cached if tokens else 0,
        usage_estimated=record.usage_estimated,
        # No answer, no tokens: a known zero. Tokens at an unknown price: NULL, not zero.
        cost_nano=record.cost_nano if tokens is not None else 0,
        saved_cost_nano=record.saved_cost_nano,
        latency_ms=round(duration_s * 1000, 3),
        ttft_ms=None if record.first_token_s is None else round(record.first_token_s * 1000, 3),
        overhead_ms=round(max(0.0, duration_s - record.upstream_wait_s) * 1000, 3),
        client_ip=client[0] if client else None,
        user_agent=user_agent,
    )


def _outcome(record: RequestRecord) -> str:
    if record.client_disconnected:
        return "client_disconnected"
    if record.status >= 400 or record.error_type is not None:
        return "error"
    return "ok"
