"""The gateway's error hierarchy, and the one place it becomes OpenAI's error envelope.

    GatewayError                      every error a client may see (status, type, code, param)
    ├── InvalidRequest        400     bad JSON, missing or mistyped field
    ├── AuthenticationFailed  401     missing, unknown, revoked or expired key
    ├── BudgetExceeded        402
    ├── PermissionDenied      403
    ├── NotFound              404     unknown alias or path
    ├── RequestTimeout        408     the body did not arrive in time
    ├── PayloadTooLarge       413
    ├── RateLimited           429
    ├── StateUnavailable      503     the shared state (Redis) cannot be reached
    ├── InternalError         500     an unexpected exception (logged in full, never shown)
    ├── UpstreamRequestError  4xx     the upstream rejected the request itself (400, 413, 422)
    ├── AllRoutesFailed       502     every route failed; the message lists each attempt
    └── GatewayTimeout        504     a timeout, or the request's deadline, with no route left

    UpstreamFailure                   one failed upstream attempt (never shown as is)
    ├── UpstreamConnectError          connection refused, reset, DNS, TLS
    ├── UpstreamTimeout               connect, first byte, idle gap or total timeout
    ├── UpstreamProtocolError         a body or event that is not what the wire format says
    │   └── UpstreamTooLarge          a body or one event over its bound (a route fault)
    └── UpstreamHTTPError             a non-2xx status, classified by the adapter

aiohttp's exceptions are translated into UpstreamFailure once, in `proxy.transport`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        return orjson.dumps(self.envelope())


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class BudgetExceeded(GatewayError):
    status = 402
    type = "budget_exceeded"
    code = "budget_exceeded"


class PermissionDenied(GatewayError):
    """403. Every raise names its own `code`: model_not_allowed, admin_required,
    no_user (a key without a user asked for a per-user view), other_user (a user's key
    asked for another user's data)."""

    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class StateUnavailable(GatewayError):
    """503: the shared state (Redis) is unreachable and `[state] on_failure = "closed"`."""

    status = 503
    type = "api_error"
    code = "state_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "1"})


class StorageUnavailable(GatewayError):
    """503: the database (PostgreSQL, or a SQLite file locked too long) cannot answer now."""

    status = 503
    type = "api_error"
    code = "storage_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "1"})


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class InternalError(GatewayError):
    status = 500
    type = "api_error"
    code = "internal_error"


class UpstreamRequestError(GatewayError):
    """The upstream judged the request itself bad; the client gets its status and message."""

    type = "invalid_request_error"
    code = "upstream_rejected_request"

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.status = status


class AllRoutesFailed(GatewayError):
    status = 502
    type = "api_error"
    code = "all_routes_failed"


class GatewayTimeout(GatewayError):
    status = 504
    type = "api_error"
    code = "upstream_timeout"


class Fault(Enum):
    """Whose fault an upstream failure is, which decides what the gateway does next."""

    TRANSIENT = "transient"  # retry this route after a backoff, then move on
    ROUTE = "route"  # the route is unusable (bad key, no access, unknown model): move on
    REQUEST = "request"  # the request is bad: tell the client at once


class UpstreamFailure(Exception):
    fault: Fault = Fault.TRANSIENT
    retry_after_s: float | None = None

    @property
    def reason(self) -> str:
        return str(self)

    def redact(self, scrub: Callable[[str], str]) -> None:
        """Remove secrets an upstream may have echoed, before anyone sees the text."""
        self.args = (scrub(str(self)),)


class UpstreamConnectError(UpstreamFailure):
    pass


class UpstreamTimeout(UpstreamFailure):
    pass


class UpstreamProtocolError(UpstreamFailure):
    pass


class UpstreamTooLarge(UpstreamProtocolError):
    """A body or a single stream event over its configured bound: this route is broken."""

    fault = Fault.ROUTE


@dataclass(frozen=True, slots=True)
class UpstreamErrorDetail:
    status: int
    message: str
    type: str | None = None
    param: str | None = None


class UpstreamHTTPError(UpstreamFailure):
    def __init__(
        self,
        detail: UpstreamErrorDetail,
        fault: Fault,
        retry_after_s: float | None = None,
        *,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(f"HTTP {detail.status}: {detail.message}")
        self.detail = detail
        self.fault = fault
        self.retry_after_s = retry_after_s
        # The provider limited this caller (requests, tokens, a quota): when every route
        # says so, the client gets a 429 it can back off on, not a 502.
        self.rate_limited = rate_limited

    def redact(self, scrub: Callable[[str], str]) -> None:
        super().redact(scrub)
        self.detail = replace(self.detail, message=scrub(self.detail.message))


def fault_for_status(status: int) -> Fault:
    """Classify an upstream HTTP status; adapters refine it by the provider's own reason
    (a bad key answered with 400, an exhausted quota with 429: faults of the route)."""
    if status in (408, 409, 429) or status >= 500:
        return Fault.TRANSIENT
    if status in (401, 402, 403, 404):
        return Fault.ROUTE
    return Fault.REQUEST
