"""How long to wait before trying the same route again."""

from __future__ import annotations

import random

from proxy.config import RetryConfig


class Backoff:
    __slots__ = ("_config", "_random")

    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._random = rng or random.Random()

    def delay_s(self, retry: int, retry_after_s: float | None) -> float | None:
        """Seconds before retry number `retry` (0-based), or None: do not retry this route.

        Jitter spreads retries of many clients but never goes below half the computed delay.
        An upstream's Retry-After wins, unless it asks for longer than max_backoff_ms.
        """
        config = self._config
        cap = config.max_backoff_ms / 1000
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= cap else None
        delay = min(cap, config.initial_backoff_ms / 1000 * config.multiplier**retry)
        return self._random.uniform(delay / 2, delay)
