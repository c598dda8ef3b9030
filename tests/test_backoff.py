from __future__ import annotations

import random

from proxy.backoff import Backoff
from proxy.config import RetryConfig

CONFIG = RetryConfig(initial_backoff_ms=100, multiplier=2, max_backoff_ms=1000)


def test_exponential_with_jitter_never_below_half() -> None:
    backoff = Backoff(CONFIG, random.Random(1))
    for retry, full in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        for _ in range(50):
            delay = backoff.delay_s(retry, None)
            assert delay is not None and full / 2 <= delay <= full


def test_retry_after_wins_up_to_the_cap_and_skips_beyond_it() -> None:
    backoff = Backoff(CONFIG)
    assert backoff.delay_s(0, 0.7) == 0.7
    assert backoff.delay_s(0, 1.5) is None
