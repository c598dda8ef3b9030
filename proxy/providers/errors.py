"""Providers' error bodies -> `UpstreamHTTPError`, classified by what the provider meant.

The status alone misleads: Gemini answers a bad key with 400 (reason API_KEY_INVALID),
Anthropic an empty credit balance with 400 ("credit balance is too low"), OpenAI an
exhausted quota with 429 (`insufficient_quota`). Those are faults of the route (another
provider may well answer), never of the client's request, and retrying the same route
cannot help. Rate limits are marked as such, with the delay the provider asked for (a
header, or Gemini's `RetryInfo.retryDelay` in the body), so a request every route
refused for rate reasons becomes a 429 the client can back off on.

Error shapes, from the providers' references and errors seen in the wild:
- OpenAI and compatibles: {"error": {"message", "type", "param", "code"}}
- Anthropic: {"type": "error", "error": {"type", "message", "details"?}, "request_id"}
- Gemini: {"error": {"code", "message", "status", "details": [{"@type": ...}]}}
- Mistral also: {"detail": ...} or {"message": ...} at the top, `message` may be an object.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.errors import Fault, UpstreamErrorDetail, UpstreamHTTPError, fault_for_status

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


@dataclass(frozen=True, slots=True)
class ErrorBody:
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    error: Mapping[str, Any] = field(default_factory=dict)  # the parsed error object


def read_error(body: bytes) -> ErrorBody:
    """The message, type, code and param of an error body in any of the shapes above."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return ErrorBody(text[:500] or "no error message")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # Gemini's streamGenerateContent without alt=sse answers an array
    if not isinstance(data, dict):
        return ErrorBody(body.decode("utf-8", "replace")[:500] or "no error message")
    error = data.get("error")
    if isinstance(error, str):
        return ErrorBody(error)
    if not isinstance(error, dict):
        error = data  # Mistral's {"detail": ...} / {"message": ...}, or a bare object
    message = error.get("message") or error.get("detail") or "no error message"
    type_ = error.get("type") or error.get("status")
    code, param = error.get("code"), error.get("param")
    return ErrorBody(
        message if isinstance(message, str) else orjson.dumps(message).decode()[:500],
        type_ if isinstance(type_, str) else None,
        code if isinstance(code, str) else None,
        param if isinstance(param, str) else None,
        error,
    )


def upstream_error(
    status: int,
    body: ErrorBody,
    headers: Mapping[str, str],
    *,
    route_fault: bool = False,
    rate_limited: bool = False,
    retry_after_s: float | None = None,
) -> UpstreamHTTPError:
    detail = UpstreamErrorDetail(status, body.message, body.type, body.param)
    fault = Fault.ROUTE if route_fault else fault_for_status(status)
    delay = retry_after(headers) if retry_after_s is None else retry_after_s
    return UpstreamHTTPError(detail, fault, delay, rate_limited=rate_limited)


def openai_error(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
    """OpenAI, DeepSeek, Mistral and OpenAI-compatible servers."""
    body = read_error(raw)
    # An exhausted quota or balance is the account's state, not a passing limit.
    no_quota = "insufficient_quota" in (body.type, body.code) or status == 402
    limited = status == 429 and not no_quota
    return upstream_error(status, body, headers, route_fault=no_quota, rate_limited=limited)


def anthropic_error(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
    body = read_error(raw)
    details = body.error.get("details")
    spend_cap = isinstance(details, dict) and details.get("error_code") == (
        "enforced_spend_limit_reached"
    )
    billing = (
        status == 402
        or body.type == "billing_error"
        or (status == 400 and "credit balance is too low" in body.message.lower())
    )
    return upstream_error(
        status,
        body,
        headers,
        route_fault=billing or spend_cap,
        rate_limited=status == 429,
    )


def gemini_error(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
    body = read_error(raw)
    details = [d for d in body.error.get("details") or () if isinstance(d, dict)]
    reasons = {d.get("reason") for d in details if d.get("@type") == _ERROR_INFO}
    bad_key = "API_KEY_INVALID" in reasons or "SERVICE_DISABLED" in reasons
    limited = status == 429 or body.type == "RESOURCE_EXHAUSTED"
    # A daily quota will not come back within any sensible retry.
    daily = any(
        "PerDay" in str(violation.get("quotaId", ""))
        for d in details
        if d.get("@type") == _QUOTA_FAILURE
        for violation in d.get("violations") or ()
        if isinstance(violation, dict)
    )
    delay = next(
        (_duration(d.get("retryDelay")) for d in details if d.get("@type") == _RETRY_INFO),
        None,
    )
    return upstream_error(
        status,
        body,
        headers,
        route_fault=bad_key or daily,
        rate_limited=limited,
        retry_after_s=None if daily else delay,
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _duration(value: Any) -> float | None:
    """A protobuf Duration in JSON: "38s", "45.837906927s"."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None
