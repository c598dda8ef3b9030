from __future__ import annotations

import pytest

from proxy.errors import RateLimited
from proxy.ratelimit import Limits, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_over_a_sliding_window() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = Limits(rpm=3)
    for _ in range(3):
        reservation = limiter.reserve("k", limits, 0)
        clock.now += 10
    assert reservation.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimited) as caught:
        limiter.reserve("k", limits, 0)
    # The first request (at t=1000) leaves the window at t=1060; it is now t=1030.
    assert caught.value.headers["retry-after"] == "30"
    assert caught.value.headers["x-ratelimit-reset-requests"] == "30s"
    assert caught.value.status == 429 and caught.value.type == "rate_limit_exceeded"
    clock.now = 1060.0
    limiter.reserve("k", limits, 0)
    limiter.reserve("other-key", limits, 0)


def test_tokens_are_reserved_then_settled() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = Limits(tpm=1000)
    first = limiter.reserve("k", limits, 800)
    with pytest.raises(RateLimited):
        limiter.reserve("k", limits, 300)
    limiter.settle(first, 100)  # it used far fewer than it reserved
    second = limiter.reserve("k", limits, 300)
    assert second.headers["x-ratelimit-remaining-tokens"] == "600"
    assert second.headers["x-ratelimit-limit-tokens"] == "1000"


def test_a_request_larger_than_the_limit_names_max_tokens() -> None:
    with pytest.raises(RateLimited) as caught:
        RateLimiter().reserve("k", Limits(tpm=100), 500)
    assert caught.value.param == "max_tokens"
