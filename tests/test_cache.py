from __future__ import annotations

import asyncio

import pytest

from proxy.cache import ResponseCache, cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def put(cache: ResponseCache, key: str, size: int = 10) -> None:
    cache.put(key, {"id": key}, b"x" * size, "p", "m", 5)


def test_key_ignores_stream_and_user_but_not_scope_or_order() -> None:
    body = {"model": "a", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    same = {"temperature": 0, "stream": True, "user": "u", **body}
    assert cache_key("a", "user:1", body) == cache_key("a", "user:1", same)
    assert cache_key("a", "user:1", body) != cache_key("a", "user:2", body)
    assert cache_key("a", "g", body) != cache_key("a", "g", {**body, "temperature": 1})


def test_ttl_expiry() -> None:
    clock = Clock()
    cache = ResponseCache(10, 10_000, ttl_s=5, clock=clock)
    put(cache, "a")
    clock.now = 4.9
    assert cache.get("a") is not None
    clock.now = 5.0
    assert cache.get("a") is None and len(cache) == 0 and cache.bytes == 0


def test_bounded_by_entries_and_bytes_least_recently_used_first() -> None:
    cache = ResponseCache(max_entries=2, max_bytes=1000, ttl_s=60)
    put(cache, "a")
    put(cache, "b")
    cache.get("a")
    put(cache, "c")
    assert cache.get("b") is None and cache.get("a") is not None
    bytes_bound = ResponseCache(max_entries=100, max_bytes=100, ttl_s=60)
    for key in "abcd":
        put(bytes_bound, key, size=20)  # 40 bytes each, counted twice
    assert len(bytes_bound) == 2 and bytes_bound.bytes <= 100
    put(bytes_bound, "huge", size=200)
    assert bytes_bound.get("huge") is None


async def test_identical_requests_in_flight_share_one_call() -> None:
    cache = ResponseCache(10, 10_000, 60)
    calls = 0

    async def produce() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "answer"

    results = await asyncio.gather(*(cache.share("k", produce) for _ in range(10)))
    assert calls == 1
    assert [r for r, _ in results] == ["answer"] * 10
    assert sum(shared for _, shared in results) == 9


async def test_followers_of_a_failed_leader_try_themselves() -> None:
    cache = ResponseCache(10, 10_000, 60)
    attempts = 0

    async def produce() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.02)
        if attempts == 1:
            raise RuntimeError("leader's upstream failed")
        return "ok"

    leader = asyncio.create_task(cache.share("k", produce))
    await asyncio.sleep(0.001)
    follower = asyncio.create_task(cache.share("k", produce))
    with pytest.raises(RuntimeError):
        await leader
    assert await follower == ("ok", False)
