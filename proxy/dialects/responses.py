"""The OpenAI Responses API (POST /v1/responses): openai-agents, pydantic-ai, responses.create.

OpenAI routes get the client's own body, untranslated: the alias swapped for the route's
model, the gateway's output cap applied, the conversation of `previous_response_id`
spelled out (the gateway keeps conversations itself, so they work across providers and
fallbacks), and `store: false` with encrypted reasoning included, so OpenAI keeps
nothing and the reasoning items still work on the next turn. Other routes get it
translated to the internal chat request and their answer rendered back.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from proxy.dialects.base import Inbound, NativeRoute, ResponsesInbound
from proxy.dialects.reasoning_state import STATE_PREFIX
from proxy.dialects.responses_request import input_items, to_chat_request
from proxy.dialects.responses_response import (
    ResponsesEncoder,
    new_id,
    response_object,
    to_response,
)
from proxy.errors import GatewayError, InvalidRequest, UpstreamFailure, UpstreamProtocolError
from proxy.estimate import estimate_tokens
from proxy.providers.base import count, load_object
from proxy.providers.openai import OpenAIAdapter
from proxy.relay import StreamEncoder
from proxy.router import Route
from proxy.schema import ChatCompletion, Usage
from proxy.transport import SSEEvent, UpstreamRequest
from proxy.validation import parse_json_object

# OpenAI refuses a smaller max_output_tokens ("Expected a value >= 16").
MIN_OUTPUT_TOKENS = 16
# The stream's last event: the whole response, with its usage.
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# Events that show the client something: no other route may answer after one.
CONTENT = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.output_item.done",
        "response.completed",
        "response.incomplete",
    }
)


class ResponsesDialect:
    api = "responses"
    passed_headers: tuple[bytes, ...] = ()

    def parse(self, body: bytes) -> ResponsesInbound:
        data = parse_json_object(body)
        items = input_items(data)
        translated = to_chat_request(data, items)
        return ResponsesInbound(
            translated.chat,  # type: ignore[arg-type]
            data,
            data.get("stream") is True,
            native_only=translated.native_only,
            dropped=tuple(translated.dropped),
            response_id=new_id("resp"),
            created_at=int(time.time()),
            items=items,
        )

    def continue_from(self, inbound: ResponsesInbound, history: list[Any]) -> None:
        """Put the conversation so far (previous_response_id's) before this turn."""
        inbound.history = history
        translated = to_chat_request(inbound.body, history + inbound.items)
        inbound.chat = translated.chat  # type: ignore[assignment]
        inbound.native_only = translated.native_only
        inbound.dropped = tuple(translated.dropped)

    def render(self, completion: ChatCompletion, inbound: Inbound) -> dict[str, Any]:
        assert isinstance(inbound, ResponsesInbound)
        return to_response(completion, inbound, completion["model"])

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder:
        assert isinstance(inbound, ResponsesInbound)
        return ResponsesEncoder(inbound, alias)

    def error(self, error: GatewayError) -> tuple[int, bytes]:
        return error.status, error.body()

    def native(self, route: Route, adapter: Any) -> NativeRoute | None:
        if route.provider.config.type == "openai" and isinstance(adapter, OpenAIAdapter):
            return NativeResponses(adapter)
        return None


def chat_usage(usage: Any, tier: Any = None) -> Usage | None:
    """A Responses usage object as the gateway prices it (the chat shape)."""
    if not isinstance(usage, dict):
        return None
    prompt, output = count(usage.get("input_tokens")), count(usage.get("output_tokens"))
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    result: Usage = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": count(cached)},
        "completion_tokens_details": {"reasoning_tokens": count(reasoning)},
    }
    if isinstance(tier, str):
        result["service_tier"] = tier  # flex and priority are priced differently
    return result


def native_body(inbound: ResponsesInbound, model: str, cap: int | None) -> dict[str, Any]:
    body = {k: v for k, v in inbound.body.items() if k != "previous_response_id"}
    body["model"] = model
    body["input"] = [_for_openai(item) for item in inbound.history + inbound.items]
    body["input"] = [item for item in body["input"] if item is not None]
    body["store"] = False
    include = [i for i in inbound.body.get("include") or () if isinstance(i, str)]
    body["include"] = (
        [*include, "reasoning.encrypted_content"]
        if "reasoning.encrypted_content" not in include
        else include
    )
    if cap is not None:
        wanted = inbound.body.get("max_output_tokens")
        body["max_output_tokens"] = min(wanted, cap) if isinstance(wanted, int) else cap
    return body


def _for_openai(item: Any) -> Any:
    """An input item as OpenAI takes it with `store: false`: no ids it never stored."""
    if not isinstance(item, dict):
        return item
    if item.get("type") == "reasoning":
        # Only OpenAI's own, with the encrypted content that stands for them: any other
        # (the gateway's, or a summary another provider's thoughts became) is refused
        # as "not found" under store: false.
        content = item.get("encrypted_content")
        if isinstance(content, str) and not content.startswith(STATE_PREFIX):
            return item
        return None
    if "id" in item:
        return {k: v for k, v in item.items() if k != "id"}
    return item


class NativeResponses:
    """An OpenAI route, called with the client's own Responses body."""

    def __init__(self, adapter: OpenAIAdapter) -> None:
        self._adapter = adapter

    def request(
        self, inbound: Inbound, model: str, *, cap: int | None, request_id: str
    ) -> UpstreamRequest:
        assert isinstance(inbound, ResponsesInbound)
        if cap is not None and cap < MIN_OUTPUT_TOKENS:
            # Raised before sending: this route is skipped, another (any other API takes
            # a cap of 1) may serve the request within the budget or token limit.
            raise InvalidRequest(
                f"the budget or token limit leaves room for {cap} output tokens, and "
                f"OpenAI's Responses API takes no fewer than {MIN_OUTPUT_TOKENS}",
                param="max_output_tokens",
                code="output_cap_too_small",
            )
        body = native_body(inbound, model, cap)
        return self._adapter.native_request("/responses", body, request_id=request_id)

    def answer(
        self, body: bytes, inbound: Inbound, alias: str
    ) -> tuple[dict[str, Any], Usage | None]:
        assert isinstance(inbound, ResponsesInbound)
        response = load_object(body)
        if response.get("object") != "response" or not isinstance(response.get("output"), list):
            raise UpstreamProtocolError("upstream answer is not a Response with an output array")
        usage = chat_usage(response.get("usage"), response.get("service_tier"))
        return as_client_sees(response, inbound, alias), usage

    def translator(self) -> ResponsesReader:
        return ResponsesReader()

    def encoder(self, inbound: Inbound, alias: str) -> StreamEncoder:
        assert isinstance(inbound, ResponsesInbound)
        return NativeResponsesEncoder(inbound, alias)

    def committed(self, event: Any) -> bool:
        return bool(event.event in CONTENT)


def as_client_sees(
    response: dict[str, Any], inbound: ResponsesInbound, alias: str
) -> dict[str, Any]:
    """OpenAI's Response under the gateway's id and the alias, with the client's own
    `store` and `previous_response_id` (not what the gateway sent)."""
    response["id"] = inbound.response_id
    response["model"] = alias
    response["store"] = inbound.body.get("store", True)
    response["previous_response_id"] = inbound.body.get("previous_response_id")
    return response


class ResponsesReader:
    """Reads an OpenAI Responses stream for its usage and its end; the events pass as
    they are. A failure before any content is the route's (the next one may answer)."""

    __slots__ = ("_content", "finished", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self._content = False

    def translate(self, event: SSEEvent) -> list[Any]:
        data = load_object(event.data)
        kind = data.get("type")
        if event.event is None:  # the name is what the encoder and committed() read
            event = SSEEvent(event.data, str(kind))
        if kind == "error":
            raise UpstreamProtocolError(f"upstream sent an error event: {data.get('message')}")
        if kind in CONTENT:
            self._content = True
        if kind in TERMINAL:
            response = data.get("response") or {}
            if kind == "response.failed" and not self._content:
                error = response.get("error") or {}
                raise UpstreamProtocolError(f"the upstream response failed: {error.get('message')}")
            self.usage = chat_usage(response.get("usage"), response.get("service_tier"))
            self.finished = True
        return [event]


class NativeResponsesEncoder:
    """OpenAI's own events to a Responses client: the response under the gateway's id."""

    __slots__ = ("_alias", "_inbound", "_sequence", "completion_tokens")

    def __init__(self, inbound: ResponsesInbound, alias: str) -> None:
        self._inbound = inbound
        self._alias = alias
        self._sequence = 0
        self.completion_tokens = 0

    def encode_all(self, events: list[SSEEvent]) -> bytes:
        out = bytearray()
        for item in events:
            data = load_object(item.data)
            kind = str(data.get("type"))
            self._note(data)
            response = data.get("response")
            if isinstance(response, dict):
                as_client_sees(response, self._inbound, self._alias)
                if kind in ("response.completed", "response.incomplete"):
                    self._inbound.answer = response
                payload = orjson.dumps(data)
            else:
                payload = item.data
            out += b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"
        return bytes(out)

    def count(self, events: list[SSEEvent]) -> None:
        for item in events:
            self._note(load_object(item.data))

    def _note(self, data: dict[str, Any]) -> None:
        if isinstance(data.get("sequence_number"), int):
            self._sequence = data["sequence_number"] + 1
        delta = data.get("delta")
        if isinstance(delta, str):
            self.completion_tokens += estimate_tokens(delta)

    def finish(self) -> bytes:
        return b""  # the upstream's own terminal event ended the stream

    def fail(self, failure: UpstreamFailure) -> bytes:
        error = {"code": "server_error", "message": f"the upstream failed: {failure.reason}"}
        response = response_object(
            self._inbound, self._alias, status="failed", output=[], error=error
        )
        data = {"type": "response.failed", "response": response, "sequence_number": self._sequence}
        return b"event: response.failed\ndata: " + orjson.dumps(data) + b"\n\n"
