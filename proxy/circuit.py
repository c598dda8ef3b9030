"""Per-provider circuit breakers: stop sending to a provider that keeps failing.

closed --(failure_threshold consecutive failures)--> open --(cooldown_s)--> half-open
half-open lets exactly one probe through: success closes the circuit, failure reopens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum

from proxy.config import CircuitBreakerConfig


class CircuitState(IntEnum):
    # Values are the Prometheus gauge's: 0 closed, 1 open, 2 half-open.
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    __slots__ = ("_clock", "_config", "_failures", "_opened_at", "_probing", "_state", "on_change")

    def __init__(
        self, config: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.on_change: Callable[[CircuitState], None] | None = None

    def configure(self, config: CircuitBreakerConfig) -> None:
        """A reloaded config's thresholds; the current state is kept."""
        self._config = config

    @property
    def state(self) -> CircuitState:
        return self._state

    def acquire(self) -> bool:
        """May a request be sent now? In half-open, only the one probe may."""
        if self._state is CircuitState.CLOSED:
            return True
        if self._state is CircuitState.OPEN:
            if self._clock() - self._opened_at < self._config.cooldown_s:
                return False
            self._set(CircuitState.HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def force(self) -> None:
        """Every route's circuit is open and the request is sent anyway."""
        self._probing = self._state is not CircuitState.CLOSED

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED)

    def failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self._config.failure_threshold
        ):
            self._opened_at = self._clock()
            self._set(CircuitState.OPEN)
        elif self._state is CircuitState.OPEN:
            self._opened_at = self._clock()

    def release(self) -> None:
        """The attempt ended without telling anything about the provider's health."""
        self._probing = False

    def _set(self, state: CircuitState) -> None:
        self._state = state
        if self.on_change is not None:
            self.on_change(state)
