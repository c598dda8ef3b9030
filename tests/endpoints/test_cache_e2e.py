"""The response cache through the gateway: hits, TTL, scope, streaming replay, coalescing."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, completion
from tests.support.fake_upstream import json_reply
from tests.support.gateway import KEY, RunningGateway

OTHER = "llmg_other_static_key"
OTHER_DIGEST = hashlib.sha256(OTHER.encode()).hexdigest()
# Deterministic (temperature 0): the only kind of request cached by default.
BODY = {"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}


def toml(fake: FakeOpenAI, db: Path, cache: str = "", ttl_s: float = 60) -> str:
    return gateway_toml(
        provider("up", fake.url, kind="openai", api_key_env="UP_KEY"),
        alias("m", ("up", "gpt-4o-mini")),
        f'[storage]\ndatabase = "{db}"\nflush_interval_ms = 10\n',
        f"[cache]\nenabled = true\nttl_s = {ttl_s}\n" + cache,
        f'[[keys]]\nname = "other"\nkey_sha256 = "{OTHER_DIGEST}"\n',
    )


async def post(
    gw: RunningGateway, body: dict[str, Any] = BODY, key: str = KEY, **headers: str
) -> httpx.Response:
    async with gw.http() as http:
        return await http.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}", **headers}
        )


async def test_hit_miss_ttl_and_no_cache(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "gw.db"
    gw = await gateway_factory(toml(fake_openai, db, ttl_s=1.5), env={"UP_KEY": "k"})
    first = await post(gw)
    second = await post(gw, {**BODY, "user": "someone"})  # `user` does not change the answer
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert "age" not in first.headers and second.headers["age"] == "0"
    assert second.json() == first.json()
    assert second.headers["x-gateway-cost-usd"] == "0"
    assert len(fake_openai.requests) == 1
    assert (await post(gw, **{"Cache-Control": "no-cache"})).headers.get("x-cache") is None
    assert len(fake_openai.requests) == 2
    await asyncio.sleep(1.6)  # past the TTL
    assert (await post(gw)).headers["x-cache"] == "MISS"
    await asyncio.sleep(0.2)
    connection = sqlite3.connect(db)
    hits = connection.execute(
        "SELECT cost_nano, saved_cost_nano FROM requests WHERE cached = 1"
    ).fetchall()
    connection.close()
    assert hits == [(0, 7 * 150 + 3 * 600)]
    async with gw.http() as http:
        metrics = (await http.get("/metrics")).text
    assert 'gateway_cache_requests_total{result="hit"} 1.0' in metrics
    assert 'gateway_cache_requests_total{result="miss"} 2.0' in metrics


async def test_streaming_request_replays_a_cached_answer(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw = await gateway_factory(toml(fake_openai, tmp_path / "gw.db"), env={"UP_KEY": "k"})
    await post(gw)
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m",
            messages=BODY["messages"],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in raw.parse()]
    assert raw.headers["x-cache"] == "HIT"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hi"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert len(fake_openai.requests) == 1


async def test_one_users_answer_is_never_served_to_another(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw = await gateway_factory(toml(fake_openai, tmp_path / "gw.db"), env={"UP_KEY": "k"})
    assert (await post(gw)).headers["x-cache"] == "MISS"
    # Static keys have no owning user, so each key is its own scope.
    assert (await post(gw, key=OTHER)).headers["x-cache"] == "MISS"
    assert (await post(gw)).headers["x-cache"] == "HIT"
    assert len(fake_openai.requests) == 2
    global_gw = await gateway_factory(
        toml(fake_openai, tmp_path / "g2.db", 'scope = "global"\n'), env={"UP_KEY": "k"}
    )
    await post(global_gw)
    assert (await post(global_gw, key=OTHER)).headers["x-cache"] == "HIT"


async def test_identical_requests_in_flight_share_one_upstream_call(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.3)
        return await json_reply(completion("shared"))(request)

    fake_openai.enqueue(slow)
    gw = await gateway_factory(toml(fake_openai, tmp_path / "gw.db"), env={"UP_KEY": "k"})
    body = {**BODY, "messages": [{"role": "user", "content": "coalesce me"}]}
    responses = await asyncio.gather(*(post(gw, body) for _ in range(8)))
    assert len(fake_openai.requests) == 1
    assert {r.json()["choices"][0]["message"]["content"] for r in responses} == {"shared"}
    assert sorted(r.headers["x-cache"] for r in responses) == ["HIT"] * 7 + ["MISS"]


async def test_only_requests_meant_to_repeat_are_cached_unless_configured(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    sampled = {"model": "m", "temperature": 1, "messages": [{"role": "user", "content": "hi"}]}
    seeded = {**sampled, "seed": 7}
    gw = await gateway_factory(toml(fake_openai, tmp_path / "a.db"), env={"UP_KEY": "k"})
    replies = [await post(gw, body) for body in (sampled, sampled, seeded, seeded)]
    assert [r.headers.get("x-cache") for r in replies] == [None, None, "MISS", "HIT"]
    everything = await gateway_factory(
        toml(fake_openai, tmp_path / "b.db", cache="deterministic_only = false\n"),
        env={"UP_KEY": "k"},
    )
    again = [await post(everything, sampled) for _ in range(2)]
    assert [r.headers.get("x-cache") for r in again] == ["MISS", "HIT"]


async def test_the_cache_is_off_when_not_configured(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config = gateway_toml(
        provider("up", fake_openai.url, kind="openai", api_key_env="UP_KEY"),
        alias("m", ("up", "gpt-4o-mini")),
        f'[storage]\ndatabase = "{tmp_path / "c.db"}"\n',
    )
    # The test fixture adds "[cache] enabled = false" when a config has no [cache]: build
    # the app from a config without one to see the product's own default.
    from proxy.config import CacheConfig

    assert CacheConfig().enabled is False
    gw = await gateway_factory(config, env={"UP_KEY": "k"})
    replies = [await post(gw) for _ in range(2)]
    assert [r.headers.get("x-cache") for r in replies] == [None, None]
    assert len(fake_openai.requests) == 2
