"""The export pipeline: a TracerProvider with a parent-based ratio sampler, and a batch
processor that sends spans to an OTLP/HTTP collector from its own thread.

Imported only when `[tracing] enabled = true`. The provider is the gateway's own, never
the process-wide global one, so each app (and each `--workers` process, whose lifespan
runs after the fork) has its own and closes it. The exporter's blocking HTTP calls run in
the processor's thread, and the final flush in a thread of its own: never on the loop.
"""

from __future__ import annotations

import asyncio

import structlog
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Tracer
from starlette.types import Scope

from proxy.config import TracingConfig
from proxy.tracing.spans import PROPAGATOR, RequestSpan

log = structlog.get_logger("proxy.tracing")
_TRACE_HEADERS = (b"traceparent", b"tracestate")
# One export, its retries included. It runs in the processor's thread, so it delays no
# request; it bounds how long a stop waits on an unreachable collector (then the spans
# still buffered are dropped, with a warning in the log).
EXPORT_TIMEOUT_S = 5.0


class OTelTracing:
    def __init__(self, provider: TracerProvider, tracer: Tracer) -> None:
        self._provider = provider
        self._tracer = tracer

    @classmethod
    def open(cls, config: TracingConfig, exporter: SpanExporter | None = None) -> OTelTracing:
        """`exporter` replaces the OTLP one (tests pass an in-memory exporter)."""
        provider = TracerProvider(
            # A client that sampled its trace gets the gateway's spans in it, and one that
            # did not gets none; only traces starting here are sampled at the ratio.
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
            resource=Resource.create({"service.name": config.service_name}),
            shutdown_on_exit=False,  # closed by the app's lifespan, flushed there
        )
        if exporter is None:
            exporter = OTLPSpanExporter(
                endpoint=config.endpoint, headers=dict(config.headers), timeout=EXPORT_TIMEOUT_S
            )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info(
            "tracing_enabled",
            endpoint=config.endpoint,
            service_name=config.service_name,
            sample_ratio=config.sample_ratio,
            headers=sorted(config.headers) or None,  # names only: values are secrets
        )
        return cls(provider, provider.get_tracer("llm-gateway"))

    def start(self, scope: Scope, api: str) -> RequestSpan:
        carrier = {
            name.decode(): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        # An invalid traceparent is ignored (the spec's rule): the request starts a trace.
        parent = PROPAGATOR.extract(carrier, Context()) if carrier else None
        return RequestSpan(self._tracer, parent, api, scope["path"])

    async def close(self) -> None:
        # Exports what is buffered, then stops the processor's thread; blocking, so not
        # on the event loop (an in-process collector, or the last requests, may need it).
        await asyncio.to_thread(self._provider.shutdown)
