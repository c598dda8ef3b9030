"""The values written to the request log."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.frozen import frozen


@frozen
class FailedAttempt:
    provider: str
    model: str
    reason: str
    status: int | None


@frozen  # every request builds one, of 32 fields (see proxy.frozen)
class RequestRow:
    request_id: str  # the gateway's own, unique
    ts: float  # unix seconds, arrival
    api: str
    key_name: str | None
    owner: str | None
    tenant: str | None
    end_user: str | None
    agent: str | None
    alias: str | None
    provider: str | None
    route_model: str | None
    attempts: int
    failed_attempts: tuple[FailedAttempt, ...]
    outcome: str  # ok | error | client_disconnected
    http_status: int
    error_type: str | None
    error_message: str | None
    streamed: bool
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    usage_estimated: bool
    cost_nano: int | None  # None: the price is unknown (not zero)
    saved_cost_nano: int
    latency_ms: float
    ttft_ms: float | None
    overhead_ms: float
    client_ip: str | None
    user_agent: str | None
    key_ref: str | None = None  # the key's identity (key:<id>, static:<name>)
    client_request_id: str | None = None  # the client's own id: not unique, searchable


@dataclass(frozen=True, slots=True)
class DebugRow:
    request_id: str
    ts: float
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    truncated: bool = False


def storable(value: str | None) -> str | None:
    """Text as every engine stores it: PostgreSQL's text cannot hold NUL, and a caller who
    sends one (in `user`, say) must not keep their request out of the log."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")
