"""What the spans say: the attributes of a request's span and of its attempts' spans.

The OpenTelemetry GenAI semantic conventions' names (`gen_ai.*`, with `error.type`,
`server.address`, `http.response.status_code`), and the gateway's own under
`llm_gateway.*`. Everything here is read from the request's parameters and the
`RequestRecord`, never from messages or answers: no prompt, no completion, no upstream
error text (it can echo either), no key (a key is named by its reference,
`static:NAME` or `key:ID`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from proxy.errors import UpstreamHTTPError, UpstreamTimeout
from proxy.record import RequestRecord

Attributes = dict[str, AttributeValue]

# gen_ai.operation.name of each API; Anthropic's token count has no conventional name.
OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "messages": "chat",
    "embeddings": "embeddings",
    "count_tokens": "count_tokens",
}
# gen_ai.provider.name's well-known values; any other provider (openai_compatible, mock)
# is named by its [providers.NAME], which says more than "openai_compatible" would.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
}
# The request's sampling parameters (chat's names: every dialect is parsed into them).
_FLOAT_PARAMS = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
)
_CACHE = {"HIT": "hit", "MISS": "miss"}


def attempt_error_type(exc: BaseException) -> str:
    """error.type as the conventions want it: the status code of an HTTP error, `timeout`,
    else the exception's class (UpstreamConnectError, UpstreamProtocolError...)."""
    if isinstance(exc, UpstreamHTTPError):
        return str(exc.detail.status)
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    return type(exc).__qualname__


# OTLP carries 64-bit integers; a caller's larger number would fail its encoding.
_INT64 = range(-(2**63), 2**63)


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value in _INT64


def request_params(request: Mapping[str, Any]) -> Attributes:
    params: Attributes = {}
    caps = [
        value
        for value in (request.get("max_completion_tokens"), request.get("max_tokens"))
        if _integer(value)
    ]
    if caps:
        params["gen_ai.request.max_tokens"] = min(caps)  # the smaller is what is sent
    for field, name in _FLOAT_PARAMS:
        value = request.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            params[name] = float(value)
    seed = request.get("seed")
    if _integer(seed):
        params["gen_ai.request.seed"] = seed
    n = request.get("n")
    if _integer(n) and n != 1:
        params["gen_ai.request.choice.count"] = n
    return params


def usage_attributes(record: RequestRecord) -> Attributes:
    tokens = record.tokens
    if tokens is None:
        return {}
    usage: Attributes = {
        "gen_ai.usage.input_tokens": tokens.prompt,
        "gen_ai.usage.output_tokens": tokens.completion,
    }
    if tokens.cached:
        usage["gen_ai.usage.cache_read.input_tokens"] = tokens.cached
    if tokens.cache_write:
        usage["gen_ai.usage.cache_write.input_tokens"] = tokens.cache_write
    if record.usage_estimated:
        usage["llm_gateway.usage_estimated"] = True
    return usage


def outcome_attributes(record: RequestRecord, provider_name: str | None) -> Attributes:
    """The request span's end: who answered, how, at what cost. Each attribute costs CPU
    on every traced request (recorded, then encoded): none repeats another."""
    out: Attributes = {
        "llm_gateway.request_id": record.request_id,
        "http.response.status_code": record.status,
        "gen_ai.request.stream": record.stream,
        "llm_gateway.attempts": len(record.attempts),
        "llm_gateway.cache": _CACHE.get(record.cache_status or "", "off"),
    }
    optional: dict[str, AttributeValue | None] = {
        "gen_ai.request.model": record.alias,  # the model asked for: the alias
        "llm_gateway.alias": record.alias,  # the same, under the name gateway queries use
        "gen_ai.response.model": record.route_model,  # the model that answered it
        "gen_ai.provider.name": provider_name,
        "llm_gateway.key": record.key_ref,
        "llm_gateway.client_request_id": record.client_request_id,
        "llm_gateway.output_cap": record.output_cap,
        "error.type": error_type(record),
    }
    out.update((name, value) for name, value in optional.items() if value is not None)
    if record.provider is not None and record.route_model is not None:
        out["llm_gateway.route"] = f"{record.provider}/{record.route_model}"
    if record.tokens is not None and record.cost_nano is not None:
        out["llm_gateway.cost_usd"] = record.cost_nano / 1e9
    if record.stream and record.first_token_s is not None:
        out["gen_ai.response.time_to_first_chunk"] = record.first_token_s
    if record.skipped:
        out["llm_gateway.skipped_routes"] = len(record.skipped)
    out.update(usage_attributes(record))
    return out


def error_type(record: RequestRecord) -> str | None:
    if record.error_type is not None:
        return record.error_type
    if record.client_disconnected:
        return "client_disconnected"
    return str(record.status) if record.status >= 400 else None


def failed(record: RequestRecord) -> bool:
    """ERROR status for what failed on the gateway's or the upstreams' side: a 5xx, a
    stream that broke after it began, every route limited upstream. A client's own error
    (a bad key, its budget, its rate limit) leaves the status unset, as HTTP servers do."""
    if record.status >= 500 or record.error_type == "upstream_stream_error":
        return True
    return record.status == 429 and any(a.rate_limited for a in record.attempts)


@functools.lru_cache(maxsize=256)
def server_attributes(base_url: str) -> tuple[tuple[str, AttributeValue], ...]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return ()  # an in-process provider (mock)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (("server.address", parts.hostname), ("server.port", port))
