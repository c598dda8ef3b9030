"""An OTLP/HTTP trace collector on a loopback port: what the gateway's real exporter sends.

It decodes each `ExportTraceServiceRequest` (protobuf, POST /v1/traces) into plain
`CollectedSpan`s, and records the request headers (the exporter's auth header, say).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.fake_upstream import serve_on_loopback

KINDS = {Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client"}
STATUSES = {Status.STATUS_CODE_ERROR: "error", Status.STATUS_CODE_OK: "ok"}


@dataclass
class CollectedSpan:
    name: str
    kind: str  # server, client, other
    trace_id: str  # hex, as in a traceparent
    span_id: str
    parent_id: str  # "" for a root span
    attributes: dict[str, Any]
    status: str  # unset, ok, error
    start_ns: int
    end_ns: int
    resource: dict[str, Any]


class Collector:
    def __init__(self, status: int = 200) -> None:
        self.status = status  # what every export is answered with
        self.spans: list[CollectedSpan] = []
        self.exports: list[CIMultiDict[str]] = []  # each export's request headers
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    async def start(self) -> Collector:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout_s: float = 10) -> list[CollectedSpan]:
        async with asyncio.timeout(timeout_s):
            while len(self.spans) < count:
                await asyncio.sleep(0.02)
        return self.spans

    def named(self, name: str) -> CollectedSpan:
        (span,) = [s for s in self.spans if s.name == name]
        return span

    def of_kind(self, kind: str) -> list[CollectedSpan]:
        return sorted((s for s in self.spans if s.kind == kind), key=lambda s: s.start_ns)

    async def _export(self, request: web.Request) -> web.Response:
        self.exports.append(CIMultiDict(request.headers))
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans += [_collected(span, resource) for span in scope_spans.spans]
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, status=self.status, content_type="application/x-protobuf")


def _collected(span: Span, resource: dict[str, Any]) -> CollectedSpan:
    return CollectedSpan(
        name=span.name,
        kind=KINDS.get(span.kind, "other"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        status=STATUSES.get(span.status.code, "unset"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        resource=resource,
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None
