"""POST /v1/chat/completions: the hot path, as a pure ASGI app."""

from __future__ import annotations

import asyncio
from time import perf_counter

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from proxy.asgi import (
    EVENT_STREAM,
    NO_BUFFERING,
    NO_CACHE,
    ClientDisconnected,
    DisconnectWatcher,
    Headers,
    header,
    read_body,
    request_id,
    send_error,
    send_response,
)
from proxy.auth import authenticate
from proxy.errors import GatewayError, InternalError, UpstreamFailure, UpstreamProtocolError
from proxy.gateway import Gateway, Runtime
from proxy.observer import Observer
from proxy.record import RequestRecord
from proxy.relay import DONE, ChunkEncoder, OpenedStream, error_event, open_stream
from proxy.router import Alias, Route
from proxy.schema import ChatCompletion, ChatRequest, parse_chat_request, wants_usage

log = structlog.get_logger("proxy.chat")


class ChatCompletions:
    def __init__(self, gateway: Gateway, observer: Observer) -> None:
        self._gateway = gateway
        self._observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = RequestRecord(request_id(scope), perf_counter(), endpoint="chat")
        runtime = self._gateway.runtime
        try:
            await self._handle(runtime, scope, receive, send, record)
        except GatewayError as error:
            record.status, record.error_type = error.status, error.type
            record.error_message = error.message
            await send_error(send, error, gateway_headers(record))
        except ClientDisconnected:
            record.client_disconnected = True
            record.status = record.status or 499
        except Exception:
            log.exception("unexpected_error", request_id=record.request_id)
            internal = InternalError(f"internal error; quote request id {record.request_id}")
            record.status, record.error_type, record.error_message = 500, internal.type, "internal"
            await send_error(send, internal, gateway_headers(record))
        finally:
            self._observer.finish(record, scope)

    async def _handle(
        self, runtime: Runtime, scope: Scope, receive: Receive, send: Send, record: RequestRecord
    ) -> None:
        principal = authenticate(runtime.keys, header(scope, b"authorization"))
        record.key_name = principal.key_name
        body = await read_body(scope, receive, runtime.config.server.max_request_body_bytes)
        request = parse_chat_request(body)
        alias = runtime.router.alias(request["model"])
        record.alias = alias.name
        principal.check_alias(alias.name)
        record.stream = bool(request.get("stream"))
        deadline = asyncio.get_running_loop().time() + runtime.config.retry.deadline_s
        async with DisconnectWatcher(receive) as watcher:
            if record.stream:
                await self._stream(runtime, request, alias, record, deadline, send, watcher)
            else:
                await self._complete(runtime, request, alias, record, deadline, send, watcher)

    async def _complete(
        self,
        runtime: Runtime,
        request: ChatRequest,
        alias: Alias,
        record: RequestRecord,
        deadline: float,
        send: Send,
        watcher: DisconnectWatcher,
    ) -> None:

        async def attempt(route: Route, deadline: float) -> tuple[ChatCompletion, tuple[str, ...]]:
            adapter = route.provider.adapter
            upstream = adapter.chat_request(
                request, route.model, stream=False, request_id=record.request_id
            )
            started = perf_counter()
            try:
                response = await route.provider.transport.send(upstream, deadline)
                try:
                    body = await response.read()
                except BaseException:
                    response.close()
                    raise
            finally:
                record.upstream_wait_s += perf_counter() - started
            if response.status != 200:
                raise adapter.error(response.status, body, response.headers)
            route.observe_latency(perf_counter() - started)
            return adapter.chat_response(body), upstream.dropped

        routes = runtime.router.plan(alias)
        route, (completion, dropped) = await runtime.failover.run(routes, attempt, record, deadline)
        note_route(record, route, dropped)
        completion["model"] = alias.name
        record.usage = completion.get("usage")
        record.status = 200
        body = orjson.dumps(completion)
        watcher.stop()
        await send_response(send, 200, body, gateway_headers(record))

    async def _stream(
        self,
        runtime: Runtime,
        request: ChatRequest,
        alias: Alias,
        record: RequestRecord,
        deadline: float,
        send: Send,
        watcher: DisconnectWatcher,
    ) -> None:

        async def attempt(route: Route, deadline: float) -> OpenedStream:
            return await open_stream(route, request, record, deadline)

        routes = runtime.router.plan(alias)
        route, opened = await runtime.failover.run(routes, attempt, record, deadline)
        note_route(record, route, opened.dropped)
        encoder = ChunkEncoder(alias.name, keep_usage=wants_usage(request))
        record.status = 200
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    EVENT_STREAM,
                    NO_CACHE,
                    NO_BUFFERING,
                    *gateway_headers(record),
                ],
            }
        )
        record.first_token_s = perf_counter() - record.started
        await relay_rest(opened, encoder, record, send, watcher)


async def relay_rest(
    opened: OpenedStream,
    encoder: ChunkEncoder,
    record: RequestRecord,
    send: Send,
    watcher: DisconnectWatcher,
) -> None:
    """Send what was held back, then every further event, then [DONE] or an error event."""
    response, translator = opened.response, opened.translator
    ending = DONE
    try:
        await send_chunk(send, encoder.encode_all(opened.held))
        while not translator.finished:
            started = perf_counter()
            event = await response.next_event()
            record.upstream_wait_s += perf_counter() - started
            if event is None:
                raise UpstreamProtocolError("the upstream closed the stream before its end")
            await send_chunk(send, encoder.encode_all(translator.translate(event)))
        response.release()
    except UpstreamFailure as failure:
        response.close()
        record.error_type, record.error_message = "upstream_stream_error", failure.reason
        log.warning("stream_failed", request_id=record.request_id, reason=failure.reason)
        ending = error_event(failure)
    except BaseException:
        response.close()
        raise
    finally:
        record.usage = translator.usage
    watcher.stop()
    await send({"type": "http.response.body", "body": ending, "more_body": False})


async def send_chunk(send: Send, data: bytes) -> None:
    if data:
        await send({"type": "http.response.body", "body": data, "more_body": True})


def note_route(record: RequestRecord, route: Route, dropped: tuple[str, ...]) -> None:
    record.provider = route.provider.name
    record.route_model = route.model
    record.dropped_params = dropped


def gateway_headers(record: RequestRecord) -> Headers:
    overhead_ms = max(0.0, (perf_counter() - record.started - record.upstream_wait_s) * 1000)
    headers: Headers = [
        (b"x-gateway-attempts", str(len(record.attempts)).encode()),
        (b"x-gateway-overhead-ms", f"{overhead_ms:.3f}".encode()),
    ]
    if record.provider is not None:
        headers.append((b"x-gateway-provider", record.provider.encode()))
    if record.route_model is not None:
        headers.append((b"x-gateway-route-model", record.route_model.encode()))
    if record.dropped_params:
        headers.append((b"x-gateway-dropped-params", ",".join(record.dropped_params).encode()))
    return headers
