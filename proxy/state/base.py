"""The state seam: what admission, caching and alerting need, as async interfaces.

Reservations are opaque to their users: whichever backend made one settles it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from proxy.budgets import Account, Crossing
from proxy.cache import CachedAnswer
from proxy.ratelimit import Limits

T = TypeVar("T")


class RateReservation(Protocol):
    @property
    def headers(self) -> dict[str, str]:
        """x-ratelimit-* for the response."""
        ...


class BudgetReservation(Protocol):
    @property
    def amount(self) -> int:
        """Nano-dollars held."""
        ...


class Rates(Protocol):
    """Per-key requests and tokens over a sliding minute."""

    async def reserve(self, key: str, limits: Limits, tokens: int) -> RateReservation:
        """Count one request of `tokens`, or raise RateLimited (429)."""
        ...

    async def settle(self, reservation: RateReservation, tokens: int) -> None:
        """Replace the reserved tokens with the real count."""
        ...

    async def available_tokens(self, key: str, limits: Limits) -> int | None: ...


class Budgets(Protocol):
    """Monthly budgets: reserve the worst case, settle to the real cost."""

    async def reserve(self, accounts: Sequence[Account], amount: int) -> BudgetReservation:
        """Hold `amount` on every account, or raise BudgetExceeded (402) holding nothing."""
        ...

    async def settle(self, reservation: BudgetReservation, cost: int) -> list[Crossing]:
        """Turn the hold into spend; return the alert thresholds this crossed."""
        ...

    async def release(self, reservation: BudgetReservation) -> None: ...

    async def remaining(self, accounts: Sequence[Account]) -> int | None:
        """What the tightest budget has left; None when none is limited."""
        ...

    async def spent(self, account: Account) -> int: ...


class Answers(Protocol):
    """The answer cache, and the sharing of identical requests in flight."""

    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(
        self,
        key: str,
        completion: dict[str, Any],
        body: bytes,
        provider: str,
        route_model: str,
        cost_nano: int | None,
    ) -> None: ...

    async def share(
        self, key: str, produce: Callable[[], Awaitable[T]]
    ) -> tuple[T | CachedAnswer, bool]:
        """Run `produce` once for concurrent identical requests: (result, shared). The
        result is the cached answer when another process produced it meanwhile."""
        ...


class Once(Protocol):
    async def first(self, fact: str) -> bool:
        """True for the first caller anywhere to claim `fact`, False for every later one."""
        ...


@dataclass(frozen=True, slots=True)
class State:
    rates: Rates
    budgets: Budgets
    once: Once
    answers: Answers | None  # None: the cache is off
    close: Callable[[], Awaitable[None]]  # what the backend holds open (a connection pool)
