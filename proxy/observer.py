"""What happens when a request ends: the access log line (and, later, metrics and rows)."""

from __future__ import annotations

from time import perf_counter

import structlog
from starlette.types import Scope

from proxy.record import RequestRecord

log = structlog.get_logger("proxy.access")


class Observer:
    def finish(self, record: RequestRecord, scope: Scope) -> None:
        """Called once per request, on the request path: must never block or raise."""
        duration_s = perf_counter() - record.started
        usage = record.usage or {}
        log.info(
            "request",
            request_id=record.request_id,
            endpoint=record.endpoint,
            key=record.key_name,
            alias=record.alias,
            provider=record.provider,
            route_model=record.route_model,
            stream=record.stream,
            status=record.status,
            error_type=record.error_type,
            error=record.error_message,
            attempts=len(record.attempts),
            failed_attempts=[
                f"{a.provider}/{a.model}: {a.outcome}" for a in record.attempts if a.outcome != "ok"
            ]
            or None,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            duration_ms=round(duration_s * 1000, 3),
            overhead_ms=round(max(0.0, duration_s - record.upstream_wait_s) * 1000, 3),
            ttft_ms=None if record.first_token_s is None else round(record.first_token_s * 1000, 3),
            client_disconnected=record.client_disconnected or None,
        )
