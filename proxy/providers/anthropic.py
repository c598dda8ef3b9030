"""Anthropic's Messages API (`type = "anthropic"`): the adapter the gateway calls.

The translations live beside it, one module per direction: `anthropic_request` (OpenAI
request -> Messages request), `anthropic_response` (Message -> completion) and
`anthropic_stream` (stream events -> chunks). This module adds the URL, the auth headers
and the error bodies, whose `{"type": "error", "error": {"type", "message"}}` shape the
shared helpers already read; the status alone decides the fault (529 overloaded: transient).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.config import ProviderConfig
from proxy.errors import UpstreamHTTPError
from proxy.price_table import PriceTable
from proxy.providers.anthropic_request import to_anthropic_request
from proxy.providers.anthropic_response import from_anthropic_message
from proxy.providers.anthropic_stream import AnthropicStreamTranslator
from proxy.providers.base import load_object
from proxy.providers.errors import anthropic_error
from proxy.schema import ChatCompletion, ChatRequest
from proxy.transport import UpstreamRequest

# The version every Messages API feature used here is documented under.
DEFAULT_API_VERSION = "2023-06-01"


class AnthropicAdapter:
    def __init__(self, config: ProviderConfig) -> None:
        self._url = f"{config.base_url}/messages"
        headers = {
            "Content-Type": "application/json",
            "anthropic-version": config.api_version or DEFAULT_API_VERSION,
            **config.headers,
        }
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._headers = headers
        self._default_max_tokens = config.default_max_tokens
        self._limits = PriceTable.builtin()

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, request_id: str
    ) -> UpstreamRequest:
        body, dropped = to_anthropic_request(
            request,
            model,
            stream=stream,
            # The Messages API needs max_tokens: the model's own limit, so nothing the
            # model would write is cut short (else the provider's default_max_tokens).
            default_max_tokens=self._limits.max_output("anthropic", model)
            or self._default_max_tokens,
        )
        headers = {**self._headers, "X-Request-Id": request_id}
        return UpstreamRequest(self._url, headers, orjson.dumps(body), dropped)

    def native_request(
        self, body: Mapping[str, Any], *, request_id: str, beta: str | None, path: str = ""
    ) -> UpstreamRequest:
        """A Messages API body sent as it is (a client that speaks it): `path` "" for
        /messages, "/count_tokens" to count. The client's beta features go along."""
        headers = {**self._headers, "X-Request-Id": request_id}
        if beta:
            # Beta features the operator turned on for this provider stay on.
            configured = next((k for k in headers if k.lower() == "anthropic-beta"), None)
            if configured is not None:
                beta = f"{headers.pop(configured)},{beta}"
            headers["anthropic-beta"] = beta
        return UpstreamRequest(self._url + path, headers, orjson.dumps(body))

    def chat_response(self, body: bytes) -> ChatCompletion:
        return from_anthropic_message(load_object(body), int(time.time()))

    def stream_translator(self) -> AnthropicStreamTranslator:
        return AnthropicStreamTranslator(int(time.time()))

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return anthropic_error(status, body, headers)
