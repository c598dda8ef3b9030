"""What the gateway learns about one request, collected as it goes, reported when it ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxy.frozen import frozen
from proxy.pricing import Price, TokenCounts
from proxy.schema import Usage

if TYPE_CHECKING:
    from proxy.tracing import RequestTrace


@frozen
class Attempt:
    provider: str
    model: str
    outcome: str  # "ok", or why the attempt failed
    status: int | None  # the upstream's HTTP status, when it sent one
    duration_s: float
    # A bounded label for metrics: ok, timeout, connect, protocol, http_429, http_4xx, http_5xx
    reason_class: str = "ok"
    rate_limited: bool = False  # the provider limited the caller (its reason, not only 429)
    retry_after_s: float | None = None

    @property
    def timed_out(self) -> bool:
        return self.reason_class == "timeout"


@frozen
class Skip:
    """A route not tried because its adapter cannot take the request (say, n > 1)."""

    provider: str
    model: str
    reason: str


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    started: float  # time.perf_counter() at arrival
    api: str = ""  # chat, responses, messages, count_tokens, embeddings
    arrived_at: float = 0.0  # unix time
    client_request_id: str | None = None  # the client's own x-request-id, if any
    key_name: str | None = None
    key_ref: str | None = None
    owner: str | None = None
    end_user: str | None = None  # the body's `user` field
    debug: bool = False
    alias: str | None = None
    provider: str | None = None
    route_model: str | None = None
    stream: bool = False
    status: int = 0
    error_type: str | None = None
    error_message: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    upstream_wait_s: float = 0.0
    first_token_s: float | None = None
    usage: Usage | None = None
    tokens: TokenCounts | None = None
    usage_estimated: bool = False
    cost_nano: int | None = None
    cached: bool = False
    cache_status: str | None = None  # "HIT" | "MISS" when the cache was consulted
    cache_age_s: float | None = None  # a hit's age
    extra_headers: dict[str, str] = field(default_factory=dict)  # rate-limit headers
    id_headers: Sequence[tuple[bytes, bytes]] = ()  # x-request-id and the client's own
    saved_cost_nano: int = 0
    client_disconnected: bool = False
    # The price of the route the last upstream request went to: a client that leaves
    # after it was sent is still charged for the prompt the provider received.
    sent: bool = False
    sent_price: Price | None = None
    dropped_params: tuple[str, ...] = ()
    output_cap: int | None = None  # the max_tokens the gateway set, when the client set none
    request_body: bytes = b""  # kept only when the debug log is on for this request
    response_body: bytes = b""
    trace: RequestTrace | None = None  # the request's spans, when [tracing] is on
