"""What the gateway learns about one request, collected as it goes, reported when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.schema import Usage


@dataclass(frozen=True, slots=True)
class Attempt:
    provider: str
    model: str
    outcome: str  # "ok", or why the attempt failed
    status: int | None  # the upstream's HTTP status, when it sent one
    duration_s: float
    timed_out: bool = False


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    started: float  # time.perf_counter() at arrival
    endpoint: str = ""
    key_name: str | None = None
    alias: str | None = None
    provider: str | None = None
    route_model: str | None = None
    stream: bool = False
    status: int = 0
    error_type: str | None = None
    error_message: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    upstream_wait_s: float = 0.0
    first_token_s: float | None = None
    usage: Usage | None = None
    client_disconnected: bool = False
    dropped_params: tuple[str, ...] = ()

    def attempt_header(self) -> str:
        return str(len(self.attempts))
