"""The Redis state against a real redis-server: two clients stand for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from proxy.budgets import Account, BudgetLedger
from proxy.errors import BudgetExceeded, RateLimited, StateUnavailable
from proxy.metrics import Metrics
from proxy.ratelimit import Limits
from proxy.state import redis as redis_state
from proxy.state.fallback import Guard, GuardedBudgets, GuardedRates
from proxy.state.memory import MemoryBudgets, MemoryRates
from proxy.state.redis import RedisAnswers, RedisBudgets, RedisKeys, RedisOnce, RedisRates
from tests.support.redis_server import RedisServer

USER = Account("user", "team", limit_nano=1_000, thresholds=(0.5, 1.0))


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    yield first, second
    await first.aclose()
    await second.aclose()


class SpendLog:
    """What the request log says an account spent this month (a real callable)."""

    def __init__(self, spent: int = 0) -> None:
        self.spent = spent
        self.asked = 0

    async def __call__(self, kind: str, name: str, since: float) -> int:
        self.asked += 1
        return self.spent


def budgets(client: Redis, log: SpendLog) -> RedisBudgets:
    return RedisBudgets(client, RedisKeys("test"), log)


async def test_concurrent_holds_over_two_processes_never_overspend(
    clients: tuple[Redis, Redis],
) -> None:
    log = SpendLog(spent=300)  # the month so far, from the durable log
    books = [budgets(client, log) for client in clients]

    async def one(i: int) -> int:
        try:
            hold = await books[i % 2].reserve([USER], 7)
        except BudgetExceeded:
            return 0
        await asyncio.sleep(0)
        await books[(i + 1) % 2].settle(hold, 7)  # settled by the other process
        return 1

    granted = sum(await asyncio.gather(*(one(i) for i in range(200))))
    assert granted == 100  # 300 + 100 * 7 = 1000: the last cent, and not one more
    assert await books[0].spent(USER) == 1_000
    assert await books[1].remaining([USER]) == 0
    assert log.asked == 2  # the month's spend was loaded once per process, not per request


async def test_thresholds_cross_once_and_holds_release(clients: tuple[Redis, Redis]) -> None:
    book = budgets(clients[0], SpendLog())
    first = await book.reserve([USER], 600)
    with pytest.raises(BudgetExceeded) as refused:
        await book.reserve([USER], 600)
    assert "0.0000004 USD left" in refused.value.message
    crossings = await book.settle(first, 600)
    assert [c.threshold for c in crossings] == [0.5]
    assert await book.settle(first, 600) == []  # settling twice changes nothing
    second = await book.reserve([USER], 300)
    await book.release(second)
    await book.release(second)
    assert await book.spent(USER) == 600 and await book.remaining([USER]) == 400


async def test_a_hold_whose_process_died_lapses(
    clients: tuple[Redis, Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_state, "HOLD_TTL_MS", 100)
    book = budgets(clients[0], SpendLog())
    await book.reserve([USER], 1_000)  # never settled: its process "died"
    with pytest.raises(BudgetExceeded):
        await book.reserve([USER], 1)
    await asyncio.sleep(0.15)
    assert await book.remaining([USER]) == 1_000
    await book.reserve([USER], 1_000)


async def test_rpm_and_tpm_hold_across_processes(clients: tuple[Redis, Redis]) -> None:
    rates = [RedisRates(client, RedisKeys("test")) for client in clients]
    limits = Limits(rpm=10)

    async def one(i: int) -> str:
        try:
            await rates[i % 2].reserve("key:1", limits, 0)
        except RateLimited as refused:
            return refused.headers["retry-after"]
        return "ok"

    outcomes = await asyncio.gather(*(one(i) for i in range(30)))
    assert outcomes.count("ok") == 10
    assert all(o == "ok" or 1 <= int(o) <= 60 for o in outcomes)
    tokens = Limits(tpm=100)
    hold = await rates[0].reserve("key:2", tokens, 90)
    assert hold.headers["x-ratelimit-remaining-tokens"] == "10"
    with pytest.raises(RateLimited):
        await rates[1].reserve("key:2", tokens, 20)
    await rates[0].settle(hold, 30)  # it used less than reserved
    assert await rates[1].available_tokens("key:2", tokens) == 70
    await rates[1].reserve("key:2", tokens, 20)
    with pytest.raises(RateLimited) as too_big:
        await rates[1].reserve("key:2", tokens, 101)
    assert too_big.value.param == "max_tokens"


async def test_answers_are_shared_and_bounded(clients: tuple[Redis, Redis]) -> None:
    keys = RedisKeys("test")
    first, second = (RedisAnswers(c, keys, 3, 10_000, ttl_s=60) for c in clients)
    await first.put("k1", {"id": "1"}, b'{"id":"1"}', "p", "m", 5)
    found = await second.get("k1")
    assert found is not None and found.body == b'{"id":"1"}' and found.cost_nano == 5
    for n in range(2, 6):  # four more: only the last three entries stay
        await first.put(f"k{n}", {"id": str(n)}, b"x" * 10, "p", "m", None)
    assert await second.get("k1") is None and await second.get("k2") is None
    assert await second.get("k5") is not None
    small = RedisAnswers(clients[0], RedisKeys("small"), 100, 300, ttl_s=60)
    await small.put("a", {}, b"a" * 100, "p", "m", None)
    await small.put("b", {}, b"b" * 100, "p", "m", None)  # over 300 bytes: "a" goes
    assert await small.get("a") is None and await small.get("b") is not None


async def test_identical_requests_in_two_processes_make_one_call(
    clients: tuple[Redis, Redis],
) -> None:
    keys = RedisKeys("test")
    first, second = (RedisAnswers(c, keys, 10, 10_000, ttl_s=60) for c in clients)
    calls = 0

    def producer(cache: RedisAnswers) -> Any:
        async def produce() -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.2)
            await cache.put("same", {"id": "x"}, b'{"id":"x"}', "p", "m", 1)
            return "asked"

        return produce

    leader, follower = await asyncio.gather(
        first.share("same", producer(first)), second.share("same", producer(second))
    )
    assert calls == 1
    asked, waited = (leader, follower) if leader[0] == "asked" else (follower, leader)
    assert asked == ("asked", False)
    assert waited[1] is True and waited[0].body == b'{"id":"x"}'


async def test_once_across_processes(clients: tuple[Redis, Redis]) -> None:
    onces = [RedisOnce(c, RedisKeys("test")) for c in clients]
    claims = await asyncio.gather(*(onces[i % 2].first("alert:x") for i in range(20)))
    assert claims.count(True) == 1


async def test_redis_down_fails_closed_or_degrades_then_recovers(
    redis_server: RedisServer, redis_url: str
) -> None:
    metrics = Metrics()
    client = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        remote = RedisBudgets(client, RedisKeys("test"), SpendLog())
        local = MemoryBudgets(BudgetLedger(clock=lambda: 1.8e9))
        closed = GuardedBudgets(Guard(metrics, local_fallback=False), remote, local)
        degraded = GuardedBudgets(Guard(metrics, local_fallback=True), remote, local)
        rates = GuardedRates(
            Guard(metrics, local_fallback=True), RedisRates(client, RedisKeys("t")), MemoryRates()
        )
        await closed.reserve([USER], 1)
        assert metrics.state_up._value.get() == 1
        redis_server.stop()
        with pytest.raises(StateUnavailable) as refused:
            await closed.reserve([USER], 1)
        assert refused.value.status == 503 and refused.value.headers["retry-after"] == "1"
        hold = await degraded.reserve([USER], 1)  # this process's own books
        await degraded.settle(hold, 1)
        await rates.reserve("key:1", Limits(rpm=5), 0)
        assert metrics.state_up._value.get() == 0 and metrics.state_errors._value.get() >= 2
        redis_server.start()
        await asyncio.sleep(0.1)
        for _ in range(20):  # the client reconnects on its next call
            try:
                await closed.reserve([USER], 1)
                break
            except StateUnavailable:
                await asyncio.sleep(0.1)
        assert metrics.state_up._value.get() == 1
    finally:
        await client.aclose()
