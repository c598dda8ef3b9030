"""While Redis cannot be reached: fail closed (503) or degrade to this process's own state.

`[state] on_failure = "closed"` refuses what needs shared state with a 503 the client may
retry; `"local"` goes on with per-process limits, budgets and cache (each process then
enforces the whole limit on its own share of traffic). Either way the gauge
`gateway_state_backend_up` drops to 0, errors count in `gateway_state_errors_total`, and a
warning is logged (at most every few seconds). Each call tries Redis again, so recovery
is immediate. A reservation is settled where it was made.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.budgets import Account, Crossing
from proxy.cache import CachedAnswer
from proxy.errors import StateUnavailable
from proxy.metrics import Metrics
from proxy.ratelimit import Limits
from proxy.state.base import Answers, Budgets, Once, Rates

log = structlog.get_logger("proxy.state")
T = TypeVar("T")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
LOG_EVERY_S = 5.0


@dataclass(slots=True)
class Held:
    """A reservation and the backend that made it (Redis, or the local fallback)."""

    inner: Any
    local: bool

    @property
    def headers(self) -> dict[str, str]:
        return self.inner.headers  # type: ignore[no-any-return]

    @property
    def amount(self) -> int:
        return self.inner.amount  # type: ignore[no-any-return]


class Guard:
    """Runs a Redis call; on an outage, the local call instead, or a 503."""

    def __init__(self, metrics: Metrics, local_fallback: bool) -> None:
        self._metrics = metrics
        self.local_fallback = local_fallback
        self._logged = 0.0
        metrics.state_up.set(1)

    async def run(
        self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> tuple[T, bool]:
        try:
            result = await remote()
        except UNREACHABLE as exc:
            self._down(exc)
            if not self.local_fallback:
                raise StateUnavailable(
                    "the gateway's shared state is unreachable; retry shortly"
                ) from None
            return await local(), True
        self._metrics.state_up.set(1)
        return result, False

    async def quietly(self, remote: Callable[[], Awaitable[None]]) -> None:
        """After the answer went out: a failure is logged and counted, never raised."""
        try:
            await remote()
        except UNREACHABLE as exc:
            self._down(exc)

    def _down(self, exc: BaseException) -> None:
        self._metrics.state_up.set(0)
        self._metrics.state_errors.inc()
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY_S:
            self._logged = now
            mode = "per-process state" if self.local_fallback else "refusing (503)"
            log.warning(
                "state_backend_unreachable", error=str(exc) or type(exc).__name__, mode=mode
            )


class GuardedRates:
    def __init__(self, guard: Guard, remote: Rates, local: Rates) -> None:
        self._guard, self._remote, self._local = guard, remote, local

    async def reserve(self, key: str, limits: Limits, tokens: int) -> Held:
        inner, local = await self._guard.run(
            lambda: self._remote.reserve(key, limits, tokens),
            lambda: self._local.reserve(key, limits, tokens),
        )
        return Held(inner, local)

    async def settle(self, reservation: Any, tokens: int) -> None:
        held: Held = reservation
        if held.local:
            await self._local.settle(held.inner, tokens)
        else:
            await self._guard.quietly(lambda: self._remote.settle(held.inner, tokens))

    async def available_tokens(self, key: str, limits: Limits) -> int | None:
        found, _ = await self._guard.run(
            lambda: self._remote.available_tokens(key, limits),
            lambda: self._local.available_tokens(key, limits),
        )
        return found


class GuardedBudgets:
    def __init__(self, guard: Guard, remote: Budgets, local: Budgets) -> None:
        self._guard, self._remote, self._local = guard, remote, local

    async def reserve(self, accounts: Sequence[Account], amount: int) -> Held:
        inner, local = await self._guard.run(
            lambda: self._remote.reserve(accounts, amount),
            lambda: self._local.reserve(accounts, amount),
        )
        return Held(inner, local)

    async def settle(self, reservation: Any, cost: int) -> list[Crossing]:
        held: Held = reservation
        if held.local:
            return await self._local.settle(held.inner, cost)
        crossings: list[Crossing] = []

        async def settle() -> None:
            crossings.extend(await self._remote.settle(held.inner, cost))

        await self._guard.quietly(settle)
        return crossings

    async def release(self, reservation: Any) -> None:
        held: Held = reservation
        if held.local:
            await self._local.release(held.inner)
        else:
            await self._guard.quietly(lambda: self._remote.release(held.inner))

    async def remaining(self, accounts: Sequence[Account]) -> int | None:
        found, _ = await self._guard.run(
            lambda: self._remote.remaining(accounts), lambda: self._local.remaining(accounts)
        )
        return found

    async def spent(self, account: Account) -> int:
        found, _ = await self._guard.run(
            lambda: self._remote.spent(account), lambda: self._local.spent(account)
        )
        return found


class GuardedAnswers:
    """The cache is an optimisation: without Redis, this process's own (never a 503)."""

    def __init__(self, guard: Guard, remote: Answers, local: Answers) -> None:
        self._guard, self._remote, self._local = guard, remote, local

    async def _run(
        self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        try:
            return await remote()
        except UNREACHABLE as exc:
            self._guard._down(exc)
            return await local()

    async def get(self, key: str) -> CachedAnswer | None:
        return await self._run(lambda: self._remote.get(key), lambda: self._local.get(key))

    async def put(
        self,
        key: str,
        completion: dict[str, Any],
        body: bytes,
        provider: str,
        route_model: str,
        cost_nano: int | None,
    ) -> None:
        await self._run(
            lambda: self._remote.put(key, completion, body, provider, route_model, cost_nano),
            lambda: self._local.put(key, completion, body, provider, route_model, cost_nano),
        )

    async def share(
        self, key: str, produce: Callable[[], Awaitable[T]]
    ) -> tuple[T | CachedAnswer, bool]:
        started = False

        async def tracked() -> T:
            nonlocal started
            started = True
            return await produce()

        try:
            return await self._remote.share(key, tracked)
        except UNREACHABLE as exc:
            if started:
                raise  # the request itself failed: asking again is not for the cache to do
            self._guard._down(exc)
            return await self._local.share(key, produce)


class GuardedOnce:
    def __init__(self, guard: Guard, remote: Once, local: Once) -> None:
        self._guard, self._remote, self._local = guard, remote, local

    async def first(self, fact: str) -> bool:
        try:
            return await self._remote.first(fact)
        except UNREACHABLE as exc:
            self._guard._down(exc)
            return await self._local.first(fact)
