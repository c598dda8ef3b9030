"""State in one Redis, shared by every worker and instance: each operation one atomic
script (`proxy.state.scripts`), so 200 concurrent requests over any number of processes
never overspend a budget nor exceed a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxy.budgets import Account, Crossing, month_of
from proxy.cache import CachedAnswer
from proxy.errors import BudgetExceeded, RateLimited
from proxy.pricing import usd
from proxy.ratelimit import Limits, duration
from proxy.state import scripts

T = TypeVar("T")
UNREACHABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# A budget hold lapses after this, should its process die before settling it.
HOLD_TTL_MS = 15 * 60 * 1000
# A month's balances are kept a little past the month.
BALANCE_TTL_MS = 40 * 24 * 3600 * 1000
ONCE_TTL_S = 40 * 24 * 3600
# How long an identical request waits for another process's answer before asking itself.
CLAIM_TTL_MS = 120_000
CLAIM_POLL_S = 0.02

# (kind, name, month start) -> what that account spent this month, from the durable log.
SpendSource = Callable[[str, str, float], Awaitable[int]]


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.base = f"{prefix}:{scripts.LAYOUT}"

    def balance(self, period: str, account: Account) -> tuple[str, str]:
        name = f"{self.base}:budget:{period}:{account.kind}:{account.name}"
        return name, name + ":holds"

    def window(self, key: str) -> tuple[str, str]:
        name = f"{self.base}:rate:{key}"
        return name, name + ":tokens"


@dataclass(slots=True)
class RedisBudgetHold:
    period: str
    amount: int
    accounts: tuple[Account, ...]
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    done: bool = False


class RedisBudgets:
    def __init__(self, redis: Redis, keys: RedisKeys, spend: SpendSource) -> None:
        self._keys = keys
        self._spend = spend
        self._reserve = redis.register_script(scripts.BUDGET_RESERVE)
        self._settle = redis.register_script(scripts.BUDGET_SETTLE)
        self._load = redis.register_script(scripts.BUDGET_LOAD)
        self._remaining = redis.register_script(scripts.BUDGET_REMAINING)
        self._redis = redis
        self._loading: dict[str, asyncio.Future[int]] = {}

    def _key_list(self, period: str, accounts: Sequence[Account]) -> list[str]:
        return [k for account in accounts for k in self._keys.balance(period, account)]

    async def _load_account(self, period: str, account: Account) -> int:
        """This month's spend from the request log, into Redis (once per account: the
        requests of this process that find it missing meanwhile wait for one load)."""
        balance, _ = self._keys.balance(period, account)
        loading = self._loading.get(balance)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._loading[balance] = future
        try:
            spent = await self._spend(account.kind, account.name, month_start_of(period))
            total = int(await self._load(keys=[balance], args=[spent, BALANCE_TTL_MS]))
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._loading[balance]
        future.set_result(total)
        return total

    async def reserve(self, accounts: Sequence[Account], amount: int) -> RedisBudgetHold:
        accounts = tuple(accounts)
        hold = RedisBudgetHold(month_of(time.time()), amount, accounts)
        limits = [-1 if a.limit_nano is None else a.limit_nano for a in accounts]
        keys = self._key_list(hold.period, accounts)
        args: list[Any] = [amount, hold.id, HOLD_TTL_MS, BALANCE_TTL_MS, *limits]
        for _ in range(len(accounts) + 1):
            result = await self._reserve(keys=keys, args=args)
            if result[0] == 0:
                return hold
            account = accounts[int(result[1]) - 1]
            if result[0] == -2:
                await self._load_account(hold.period, account)
                continue
            assert account.limit_nano is not None
            left = int(result[2])
            raise BudgetExceeded(
                f"the {account.kind} {account.name!r} has {usd(left)} USD left of its "
                f"monthly budget of {usd(account.limit_nano)} USD; this request may cost "
                f"up to {usd(amount)} USD"
            )
        raise RuntimeError("budget spend could not be loaded")  # pragma: no cover

    async def settle(self, reservation: Any, cost: int) -> list[Crossing]:
        hold: RedisBudgetHold = reservation
        if hold.done:
            return []
        hold.done = True
        keys = self._key_list(hold.period, hold.accounts)
        after = await self._settle(keys=keys, args=[hold.id, hold.amount, cost, BALANCE_TTL_MS])
        crossings = []
        for account, spent in zip(hold.accounts, after, strict=True):
            before = int(spent) - cost
            if account.limit_nano:
                crossings += [
                    Crossing(account, hold.period, t, int(spent))
                    for t in account.thresholds
                    if before < t * account.limit_nano <= int(spent)
                ]
        return crossings

    async def release(self, reservation: Any) -> None:
        hold: RedisBudgetHold = reservation
        if hold.done:
            return
        hold.done = True
        keys = self._key_list(hold.period, hold.accounts)
        await self._settle(keys=keys, args=[hold.id, hold.amount, -1, BALANCE_TTL_MS])

    async def remaining(self, accounts: Sequence[Account]) -> int | None:
        accounts = tuple(accounts)
        if not any(a.limit_nano is not None for a in accounts):
            return None
        period = month_of(time.time())
        limits = [-1 if a.limit_nano is None else a.limit_nano for a in accounts]
        keys = self._key_list(period, accounts)
        for _ in range(len(accounts) + 1):
            result = await self._remaining(keys=keys, args=limits)
            if len(result) == 1:
                return int(result[0])
            await self._load_account(period, accounts[int(result[1]) - 1])
        raise RuntimeError("budget spend could not be loaded")  # pragma: no cover

    async def spent(self, account: Account) -> int:
        period = month_of(time.time())
        balance, _ = self._keys.balance(period, account)
        # redis-py's stubs type the sync and async clients alike.
        loaded, spent = await self._redis.hmget(balance, ["loaded", "spent"])  # type: ignore[misc]
        if loaded is None:
            return await self._load_account(period, account)
        return int(spent or 0)


def month_start_of(period: str) -> float:
    year, month = (int(part) for part in period.split("-"))
    return dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp()


@dataclass(slots=True)
class RedisRateHold:
    key: str
    id: str
    headers: dict[str, str]


class RedisRates:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._keys = keys
        self._reserve = redis.register_script(scripts.RATE_RESERVE)
        self._settle = redis.register_script(scripts.RATE_SETTLE)
        self._available = redis.register_script(scripts.RATE_AVAILABLE)

    async def reserve(self, key: str, limits: Limits, tokens: int) -> RedisRateHold:
        if limits.tpm is not None and tokens > limits.tpm:
            raise RateLimited(
                f"this request needs up to {tokens} tokens, more than the key's limit of "
                f"{limits.tpm} tokens per minute; lower max_tokens",
                param="max_tokens",
            )
        hold_id = secrets.token_hex(8)
        rpm = -1 if limits.rpm is None else limits.rpm
        tpm = -1 if limits.tpm is None else limits.tpm
        result = [
            int(v)
            for v in await self._reserve(
                keys=list(self._keys.window(key)), args=[rpm, tpm, tokens, hold_id]
            )
        ]
        if result[0] == 0:
            _, count, used, requests_reset, tokens_reset = result
            return RedisRateHold(
                key, hold_id, headers(limits, count, used, requests_reset, tokens_reset)
            )
        status, reset, count, used = result
        wait = reset / 1000
        found = headers(limits, count, used, reset, reset)
        found["retry-after"] = str(max(1, math.ceil(wait)))
        limit = f"{limits.rpm} requests" if status == -1 else f"{limits.tpm} tokens"
        raise RateLimited(
            f"rate limit reached: {limit} per minute for this key; retry in {wait:.1f}s",
            headers=found,
        )

    async def settle(self, reservation: Any, tokens: int) -> None:
        hold: RedisRateHold = reservation
        await self._settle(keys=list(self._keys.window(hold.key)), args=[hold.id, tokens])

    async def available_tokens(self, key: str, limits: Limits) -> int | None:
        if limits.tpm is None:
            return None
        return int(await self._available(keys=list(self._keys.window(key)), args=[limits.tpm]))


def headers(
    limits: Limits, count: int, used: int, requests_ms: int, tokens_ms: int
) -> dict[str, str]:
    found: dict[str, str] = {}
    if limits.rpm is not None:
        found["x-ratelimit-limit-requests"] = str(limits.rpm)
        found["x-ratelimit-remaining-requests"] = str(max(0, limits.rpm - count))
        found["x-ratelimit-reset-requests"] = duration(requests_ms / 1000)
    if limits.tpm is not None:
        found["x-ratelimit-limit-tokens"] = str(limits.tpm)
        found["x-ratelimit-remaining-tokens"] = str(max(0, limits.tpm - used))
        found["x-ratelimit-reset-tokens"] = duration(tokens_ms / 1000)
    return found


class RedisAnswers:
    """The answer cache in Redis; identical requests anywhere wait for one answer."""

    def __init__(
        self, redis: Redis, keys: RedisKeys, max_entries: int, max_bytes: int, ttl_s: float
    ) -> None:
        self._redis = redis
        self._prefix = f"{keys.base}:answer:"
        self._order = f"{keys.base}:answers:order"
        self._sizes = f"{keys.base}:answers:sizes"
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._put = redis.register_script(scripts.CACHE_PUT)
        self._release = redis.register_script(scripts.RELEASE_CLAIM)
        self._local: dict[str, asyncio.Future[Any]] = {}

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self._redis.get(self._prefix + key)
        if raw is None:
            return None
        data = orjson.loads(raw)
        return CachedAnswer(
            data["completion"],
            data["body"].encode(),
            data["provider"],
            data["route_model"],
            data["cost_nano"],
            data["stored_at"] + self._ttl_ms / 1000,
            data["stored_at"],
        )

    async def put(
        self,
        key: str,
        completion: dict[str, Any],
        body: bytes,
        provider: str,
        route_model: str,
        cost_nano: int | None,
    ) -> None:
        value = orjson.dumps(
            {
                "completion": completion,
                "body": body.decode(),
                "provider": provider,
                "route_model": route_model,
                "cost_nano": cost_nano,
                "stored_at": time.time(),
            }
        )
        if len(value) > self._max_bytes:
            return
        keys = [self._prefix + key, self._order, self._sizes, self._claim(key)]
        args: list[Any] = [
            key,
            value,
            self._ttl_ms,
            self._max_bytes,
            self._max_entries,
            self._prefix,
        ]
        await self._put(keys=keys, args=args)

    def _claim(self, key: str) -> str:
        return f"{self._prefix}{key}:claim"

    async def share(
        self, key: str, produce: Callable[[], Awaitable[T]]
    ) -> tuple[T | CachedAnswer, bool]:
        """In this process, identical requests share one call; across processes the
        first to claim the key asks, and the others wait for its answer in the cache."""
        leader = self._local.get(key)
        if leader is not None:
            try:
                return await asyncio.shield(leader), True
            except Exception:
                pass
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._local[key] = future
        try:
            result = await self._claimed(key, produce)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()
            raise
        else:
            future.set_result(result)
            return result, isinstance(result, CachedAnswer)
        finally:
            if self._local.get(key) is future:
                del self._local[key]

    async def _claimed(self, key: str, produce: Callable[[], Awaitable[T]]) -> T | CachedAnswer:
        claim, token = self._claim(key), secrets.token_hex(8)
        deadline = time.monotonic() + CLAIM_TTL_MS / 1000
        waited = False
        while not await self._redis.set(claim, token, nx=True, px=CLAIM_TTL_MS):
            waited = True
            found = await self.get(key)
            if found is not None:
                return found  # another process asked, and its answer is in
            if time.monotonic() >= deadline:
                break  # it takes too long: ask ourselves
            await asyncio.sleep(CLAIM_POLL_S)
        try:
            if waited:  # the claim lifted: as the answer landed, or as its asker failed
                found = await self.get(key)
                if found is not None:
                    return found
            return await produce()  # the producer puts the answer, which lifts the claim
        finally:
            # Quietly: a claim left behind lapses by itself, and the answer is in hand.
            with contextlib.suppress(*UNREACHABLE_ERRORS):
                await self._release(keys=[claim], args=[token])


class RedisOnce:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._prefix = f"{keys.base}:once:"

    async def first(self, fact: str) -> bool:
        return bool(await self._redis.set(self._prefix + fact, 1, nx=True, ex=ONCE_TTL_S))
