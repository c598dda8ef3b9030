"""The pipeline on its own, with the SDK's in-memory exporter in place of OTLP's."""

from __future__ import annotations

from time import perf_counter

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from proxy.config import TracingConfig
from proxy.pricing import TokenCounts
from proxy.record import RequestRecord
from proxy.tracing import open_tracing
from proxy.tracing.pipeline import OTelTracing

CONFIG = TracingConfig(enabled=True)


def scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"headers": list(headers), "path": "/v1/messages"}


def test_off_builds_nothing() -> None:
    assert open_tracing(TracingConfig()) is None


async def test_a_malformed_traceparent_starts_a_new_trace() -> None:
    exporter = InMemorySpanExporter()
    tracing = OTelTracing.open(CONFIG, exporter)
    trace = tracing.start(scope((b"traceparent", b"00-not-a-trace-01")), "messages")
    record = RequestRecord("req-1", perf_counter(), api="messages", status=200)
    record.alias, record.tokens, record.cost_nano = "smart", TokenCounts(3, 4, cached=2), 1500
    trace.end(record)
    await tracing.close()

    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.kind is SpanKind.SERVER
    assert span.name == "chat smart"  # the Messages API is a chat operation
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attributes["llm_gateway.cost_usd"] == 1.5e-06
    assert span.status.status_code is StatusCode.UNSET


async def test_a_broken_stream_is_an_error() -> None:
    exporter = InMemorySpanExporter()
    tracing = OTelTracing.open(CONFIG, exporter)
    trace = tracing.start(scope(), "chat")
    record = RequestRecord("req-2", perf_counter(), api="chat", status=200, stream=True)
    record.error_type = "upstream_stream_error"
    trace.end(record)
    await tracing.close()

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "upstream_stream_error"
