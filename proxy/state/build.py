"""The configured state backend, opened at start-up."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from proxy.budgets import BudgetLedger, month_of
from proxy.cache import ResponseCache
from proxy.config import GatewayConfig
from proxy.metrics import Metrics
from proxy.state.base import Answers, State
from proxy.state.fallback import (
    Guard,
    GuardedAnswers,
    GuardedBudgets,
    GuardedOnce,
    GuardedRates,
)
from proxy.state.memory import (
    MemoryAnswers,
    MemoryBudgets,
    MemoryOnce,
    MemoryRates,
    nothing_to_close,
)
from proxy.state.redis import RedisAnswers, RedisBudgets, RedisKeys, RedisOnce, RedisRates
from proxy.storage.database import Database
from proxy.storage.spend import account_spend, month_spend


async def open_state(config: GatewayConfig, db: Database, metrics: Metrics) -> State:
    now = time.time()
    ledger = BudgetLedger(clock=time.time)
    ledger.load(month_of(now), await month_spend(db, now))
    cache = config.cache
    local = State(
        MemoryRates(),
        MemoryBudgets(ledger),
        MemoryOnce(),
        MemoryAnswers(ResponseCache(cache.max_entries, cache.max_bytes, cache.ttl_s))
        if cache.enabled
        else None,
        nothing_to_close,
    )
    settings = config.state
    if settings.backend == "memory":
        return local
    timeout = settings.timeout_ms / 1000
    redis = Redis.from_url(
        settings.url,
        password=settings.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    keys = RedisKeys(settings.key_prefix)

    async def spend(kind: str, name: str, since: float) -> int:
        return await account_spend(db, kind, name, since)

    guard = Guard(metrics, local_fallback=settings.on_failure == "local")
    answers: Answers | None = None
    if local.answers is not None:
        remote = RedisAnswers(redis, keys, cache.max_entries, cache.max_bytes, cache.ttl_s)
        answers = GuardedAnswers(guard, remote, local.answers)
    return State(
        GuardedRates(guard, RedisRates(redis, keys), local.rates),
        GuardedBudgets(guard, RedisBudgets(redis, keys, spend), local.budgets),
        GuardedOnce(guard, RedisOnce(redis, keys), local.once),
        answers,
        redis.aclose,
    )
