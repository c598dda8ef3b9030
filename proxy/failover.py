"""The fallback loop: try a request's routes in order, with retries, backoff and circuits.

It knows nothing about what an attempt does (plain call, or opening a stream up to its
first content); it only decides, from the failure's `Fault`, whether to retry the same
route, move on, or give up, and it records every attempt. A route whose adapter refuses
the request before sending it (a parameter that provider cannot take) is skipped, with
its reason, and the next route gets its chance; only when every route refused is the
client told (400). When every route failed for rate reasons, the client gets a 429 with
the longest sensible Retry-After the upstreams asked for, not a 502.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TypeVar

from proxy.backoff import Backoff
from proxy.config import RetryConfig
from proxy.errors import (
    AllRoutesFailed,
    Fault,
    GatewayError,
    GatewayTimeout,
    InvalidRequest,
    RateLimited,
    UpstreamConnectError,
    UpstreamFailure,
    UpstreamHTTPError,
    UpstreamRequestError,
    UpstreamTimeout,
)
from proxy.record import Attempt, RequestRecord, Skip
from proxy.router import Route

T = TypeVar("T")
AttemptFn = Callable[[Route, float], Awaitable[T]]
# A Retry-After longer than this is no advice a client can act on within a request.
MAX_RETRY_AFTER_S = 300.0


class Failover:
    def __init__(
        self, config: RetryConfig, backoff: Backoff, scrub: Callable[[str], str] = str
    ) -> None:
        self._config = config
        self._backoff = backoff
        self._scrub = scrub

    async def run(
        self, routes: list[Route], attempt: AttemptFn[T], record: RequestRecord, deadline: float
    ) -> tuple[Route, T]:
        """The first successful attempt's route and result; raise when every route fails."""
        allowed = [route for route in routes if route.breaker.acquire()]
        if not allowed:
            # Every circuit is open: better to try than to refuse without asking.
            allowed = routes
            for route in routes:
                route.breaker.force()
        refusals: list[InvalidRequest] = []
        for index, route in enumerate(allowed):
            try:
                result = await self._try_route(route, attempt, record, deadline)
            except InvalidRequest as refusal:
                # The adapter could not express the request for this provider: no call
                # was made, so the route's health is unknown and the next route may do.
                route.breaker.release()
                refusals.append(refusal)
                record.skipped.append(Skip(route.provider.name, route.model, refusal.message))
                continue
            except BaseException:
                for later in allowed[index + 1 :]:
                    later.breaker.release()
                raise
            if result is not None:
                for later in allowed[index + 1 :]:
                    later.breaker.release()
                return route, result[0]
            if asyncio.get_running_loop().time() >= deadline:
                for later in allowed[index + 1 :]:
                    later.breaker.release()
                break
        if refusals and not record.attempts:
            raise refusals[0]  # every route refused the request itself: tell the client
        raise _exhausted(record, asyncio.get_running_loop().time() >= deadline)

    async def _try_route(
        self, route: Route, attempt: AttemptFn[T], record: RequestRecord, deadline: float
    ) -> tuple[T] | None:
        loop = asyncio.get_running_loop()
        retries = self._config.attempts_per_route
        trace = record.trace
        for retry in range(retries + 1):
            started = perf_counter()
            try:
                if trace is None:
                    result = await attempt(route, deadline)
                else:
                    result = await trace.attempt(route, attempt, deadline)
            except UpstreamFailure as failure:
                failure.redact(self._scrub)
                record.attempts.append(_failed(route, failure, perf_counter() - started))
                if failure.fault is Fault.REQUEST:
                    route.breaker.release()
                    raise _request_error(failure) from None
                route.breaker.failure()
                if failure.fault is Fault.ROUTE or retry == retries:
                    return None
                delay = self._backoff.delay_s(retry, failure.retry_after_s)
                if delay is None or loop.time() + delay >= deadline:
                    return None
                await asyncio.sleep(delay)
                record.upstream_wait_s += delay
                if not route.breaker.acquire():
                    return None  # the circuit opened meanwhile
            except BaseException:
                route.breaker.release()
                raise
            else:
                route.breaker.success()
                record.attempts.append(
                    Attempt(route.provider.name, route.model, "ok", 200, perf_counter() - started)
                )
                return (result,)
        return None


def _failed(route: Route, failure: UpstreamFailure, duration_s: float) -> Attempt:
    http = failure if isinstance(failure, UpstreamHTTPError) else None
    return Attempt(
        route.provider.name,
        route.model,
        failure.reason,
        None if http is None else http.detail.status,
        duration_s,
        _reason_class(failure),
        rate_limited=http is not None and http.rate_limited,
        retry_after_s=failure.retry_after_s,
    )


def _reason_class(failure: UpstreamFailure) -> str:
    if isinstance(failure, UpstreamTimeout):
        return "timeout"
    if isinstance(failure, UpstreamConnectError):
        return "connect"
    if isinstance(failure, UpstreamHTTPError):
        status = failure.detail.status
        return "http_429" if status == 429 else f"http_{status // 100}xx"
    return "protocol"


def _request_error(failure: UpstreamFailure) -> UpstreamRequestError:
    assert isinstance(failure, UpstreamHTTPError)
    detail = failure.detail
    return UpstreamRequestError(detail.status, detail.message, param=detail.param)


def _exhausted(record: RequestRecord, deadline_passed: bool) -> GatewayError:
    failed = [a for a in record.attempts if a.outcome != "ok"]
    listing = "; ".join(
        [f"{a.provider}/{a.model}: {a.outcome}" for a in failed]
        + [f"{s.provider}/{s.model}: skipped, {s.reason}" for s in record.skipped]
    )
    if deadline_passed:
        return GatewayTimeout(f"the request deadline passed with no route left ({listing})")
    if not failed:
        return AllRoutesFailed("no usable route for this model")
    if all(a.timed_out for a in failed):
        return GatewayTimeout(f"every route timed out: {listing}")
    if all(a.rate_limited for a in failed):
        return _rate_limited(failed, listing)
    return AllRoutesFailed(f"every route failed: {listing}")


def _rate_limited(failed: list[Attempt], listing: str) -> RateLimited:
    delays = [a.retry_after_s for a in failed if a.retry_after_s is not None]
    headers = {}
    if delays:
        # The longest wait any upstream asked for: sooner, every route would refuse again.
        headers["retry-after"] = str(max(1, math.ceil(min(max(delays), MAX_RETRY_AFTER_S))))
    return RateLimited(f"every route is rate-limited upstream: {listing}", headers=headers)
