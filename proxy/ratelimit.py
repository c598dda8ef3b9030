"""Per-key request and token limits over a sliding minute, exact within one process.

Each key keeps a log of the last minute's requests (and their tokens), so a limit holds
for any 60-second window, not only for calendar minutes. Tokens are reserved up front
(the prompt estimate plus max_tokens) and settled to the real count afterwards. With
several gateway processes each enforces its own share; a shared Redis backend behind the
same interface is the way to a global limit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from proxy.errors import RateLimited
from proxy.frozen import frozen

WINDOW_S = 60.0


@frozen
class Limits:
    rpm: int | None = None
    tpm: int | None = None

    @property
    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None


@dataclass(slots=True)
class _Entry:
    at: float
    tokens: int


@dataclass(slots=True)
class _Window:
    entries: deque[_Entry] = field(default_factory=deque)
    tokens: int = 0

    def expire(self, now: float) -> None:
        entries = self.entries
        while entries and entries[0].at <= now - WINDOW_S:
            self.tokens -= entries.popleft().tokens


@dataclass(slots=True)
class Reservation:
    window: _Window
    entry: _Entry
    limits: Limits
    headers: dict[str, str]


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def reserve(self, key: str, limits: Limits, tokens: int) -> Reservation:
        """Count one request of `tokens` against the key, or raise RateLimited (429)."""
        now = self._clock()
        window = self._windows.setdefault(key, _Window())
        window.expire(now)
        requests = len(window.entries)
        if limits.rpm is not None and requests + 1 > limits.rpm:
            raise self._refusal(window, limits, now, "requests", f"{limits.rpm} requests")
        if limits.tpm is not None and window.tokens + tokens > limits.tpm:
            if tokens > limits.tpm:
                raise RateLimited(
                    f"this request needs up to {tokens} tokens, more than the key's limit of "
                    f"{limits.tpm} tokens per minute; lower max_tokens",
                    param="max_tokens",
                )
            raise self._refusal(window, limits, now, "tokens", f"{limits.tpm} tokens")
        entry = _Entry(now, tokens)
        window.entries.append(entry)
        window.tokens += tokens
        return Reservation(window, entry, limits, _headers(window, limits, now))

    def available_tokens(self, key: str, limits: Limits) -> int | None:
        """Tokens the key may still use in the current window; None without a TPM limit."""
        if limits.tpm is None:
            return None
        window = self._windows.get(key)
        if window is None:
            return limits.tpm
        window.expire(self._clock())
        return max(0, limits.tpm - window.tokens)

    def settle(self, reservation: Reservation, tokens: int) -> None:
        """Replace the reserved token count with the real one (it stays in its window)."""
        reservation.window.tokens += tokens - reservation.entry.tokens
        reservation.entry.tokens = tokens

    def _refusal(
        self, window: _Window, limits: Limits, now: float, kind: str, limit: str
    ) -> RateLimited:
        headers = _headers(window, limits, now)
        wait = _reset_s(window, now, limits, kind)
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        return RateLimited(
            f"rate limit reached: {limit} per minute for this key; retry in {wait:.1f}s",
            headers=headers,
        )


def _reset_s(window: _Window, now: float, limits: Limits, kind: str) -> float:
    """Seconds until enough of the window expires to admit one more request."""
    if not window.entries:
        return 0.0
    if kind == "requests" and limits.rpm is not None:
        excess = len(window.entries) + 1 - limits.rpm
        oldest = window.entries[max(0, excess - 1)]
        return max(0.0, oldest.at + WINDOW_S - now)
    return max(0.0, window.entries[0].at + WINDOW_S - now)


def _headers(window: _Window, limits: Limits, now: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    if limits.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, limits.rpm - len(window.entries)))
        headers["x-ratelimit-reset-requests"] = duration(_reset_s(window, now, limits, "requests"))
    if limits.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, limits.tpm - window.tokens))
        headers["x-ratelimit-reset-tokens"] = duration(_reset_s(window, now, limits, "tokens"))
    return headers


def duration(seconds: float) -> str:
    """OpenAI's reset format: '1s', '6m0s', '0.5s'."""
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest):d}s"
