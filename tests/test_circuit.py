from __future__ import annotations

from proxy.circuit import CircuitBreaker, CircuitState
from proxy.config import CircuitBreakerConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_then_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=3, cooldown_s=10), clock)
    for _ in range(2):
        assert breaker.acquire()
        breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.failure()
    assert breaker.state is CircuitState.OPEN and not breaker.acquire()
    clock.now = 10
    assert breaker.acquire() and breaker.state is CircuitState.HALF_OPEN
    assert not breaker.acquire()  # only one probe at a time
    breaker.failure()
    assert breaker.state is CircuitState.OPEN
    clock.now = 20
    assert breaker.acquire()
    breaker.success()
    assert breaker.state is CircuitState.CLOSED and breaker.acquire()


def test_success_resets_the_consecutive_count_and_release_frees_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=2, cooldown_s=1), clock)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.failure()
    clock.now = 1
    assert breaker.acquire()
    breaker.release()
    assert breaker.acquire()


def test_state_changes_are_reported() -> None:
    seen: list[CircuitState] = []
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1, cooldown_s=0))
    breaker.on_change = seen.append
    breaker.failure()
    breaker.acquire()
    breaker.success()
    assert seen == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]
