"""Optional OpenTelemetry traces: the seam the request path sees.

A proxied request gets a SERVER span (a child of the client's `traceparent`, if it sent
one), and each upstream attempt a CLIENT span under it, whose context goes upstream as
`traceparent`. Spans carry the GenAI semantic conventions' attributes and the gateway's
own (`llm_gateway.*`); never a prompt, an answer or a key.

Nothing here imports opentelemetry: `open_tracing` imports the SDK only when `[tracing]
enabled = true`. With traces off, a request's whole cost is a few `is None` checks and
one context-variable read per upstream attempt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from starlette.types import Scope

    from proxy.config import TracingConfig
    from proxy.record import RequestRecord
    from proxy.router import Route

T = TypeVar("T")

__all__ = ["OUTBOUND", "Outbound", "RequestTrace", "Tracing", "open_tracing"]


class Outbound(Protocol):
    """The upstream attempt under way, as the transport sees it."""

    def headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The request's headers with this attempt's `traceparent` (and `tracestate`)."""
        ...


class RequestTrace(Protocol):
    """One request's span, and the spans of its upstream attempts."""

    def describe(self, request: Mapping[str, Any]) -> None:
        """Note the request's sampling parameters (max tokens, temperature...)."""
        ...

    async def attempt(
        self, route: Route, call: Callable[[Route, float], Awaitable[T]], deadline: float
    ) -> T:
        """Run one upstream attempt under its own span."""
        ...

    def end(self, record: RequestRecord) -> None:
        """Describe the request's outcome and end its spans; never raises."""
        ...


class Tracing(Protocol):
    def start(self, scope: Scope, api: str) -> RequestTrace: ...

    async def close(self) -> None:
        """Export what is still buffered, then stop exporting."""
        ...


# The traced upstream attempt running in this task, if any: the transport asks it for the
# headers that carry the attempt's context upstream. Unset (None) when traces are off.
OUTBOUND: ContextVar[Outbound | None] = ContextVar("llm_gateway_outbound", default=None)


def open_tracing(config: TracingConfig) -> Tracing | None:
    """The tracer the config asks for, exporting in the background; None when off."""
    if not config.enabled:
        return None
    from proxy.tracing.pipeline import OTelTracing  # the SDK is imported only when on

    return OTelTracing.open(config)
