"""State in the process: exact within it, each worker or instance on its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from proxy.budgets import Account, BudgetLedger, Crossing, Reservation
from proxy.cache import CachedAnswer, ResponseCache
from proxy.ratelimit import Limits, RateLimiter
from proxy.ratelimit import Reservation as RateReservation

T = TypeVar("T")


class MemoryRates:
    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter or RateLimiter()

    async def reserve(self, key: str, limits: Limits, tokens: int) -> RateReservation:
        return self.limiter.reserve(key, limits, tokens)

    async def settle(self, reservation: Any, tokens: int) -> None:
        self.limiter.settle(reservation, tokens)

    async def available_tokens(self, key: str, limits: Limits) -> int | None:
        return self.limiter.available_tokens(key, limits)


class MemoryBudgets:
    """The ledger, loaded at start-up with this month's spend from the request log."""

    def __init__(self, ledger: BudgetLedger) -> None:
        self.ledger = ledger

    async def reserve(self, accounts: Sequence[Account], amount: int) -> Reservation:
        return self.ledger.reserve(accounts, amount)

    async def settle(self, reservation: Any, cost: int) -> list[Crossing]:
        return self.ledger.settle(reservation, cost)

    async def release(self, reservation: Any) -> None:
        self.ledger.release(reservation)

    async def remaining(self, accounts: Sequence[Account]) -> int | None:
        return self.ledger.remaining(accounts)

    async def spent(self, account: Account) -> int:
        return self.ledger.spent(account)


class MemoryAnswers:
    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    async def get(self, key: str) -> CachedAnswer | None:
        return self.cache.get(key)

    async def put(
        self,
        key: str,
        completion: dict[str, Any],
        body: bytes,
        provider: str,
        route_model: str,
        cost_nano: int | None,
    ) -> None:
        self.cache.put(key, completion, body, provider, route_model, cost_nano)

    async def share(
        self, key: str, produce: Callable[[], Awaitable[T]]
    ) -> tuple[T | CachedAnswer, bool]:
        return await self.cache.share(key, produce)


class MemoryOnce:
    def __init__(self, claimed: set[str] | None = None) -> None:
        self._claimed = claimed or set()

    async def first(self, fact: str) -> bool:
        if fact in self._claimed:
            return False
        self._claimed.add(fact)
        return True


async def nothing_to_close() -> None:
    return None
