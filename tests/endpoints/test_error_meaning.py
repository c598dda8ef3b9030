"""Failover follows what the provider meant, not only the status it answered with."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_anthropic import CREDIT_BALANCE_TOO_LOW, FakeAnthropic
from tests.support.fake_gemini import FakeGemini, resource_exhausted
from tests.support.fake_openai import INSUFFICIENT_QUOTA, FakeOpenAI, rate_limit_error
from tests.support.fake_upstream import json_reply
from tests.support.gateway import RunningGateway

MESSAGES = [{"role": "user", "content": "hello"}]
KEYS = {"G_KEY": "gemini-key-revoked", "A_KEY": "sk-ant-x", "O_KEY": "sk-o"}


def config(first: str, url: str, backup: FakeOpenAI, kind: str, model: str) -> str:
    return gateway_toml(
        provider("first", url, kind=kind, api_key_env=f"{kind[0].upper()}_KEY"),
        provider("backup", backup.url, kind="openai", api_key_env="O_KEY"),
        alias("m", ("first", model), ("backup", "gpt-4o-mini")),
        attempts=2,  # a transient fault would be retried twice on the same route
    )


async def answer(gw: RunningGateway, **kwargs: object) -> openai.types.chat.ChatCompletion:
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, **kwargs
        )
        gw.last_headers = raw.headers  # type: ignore[attr-defined]
        return raw.parse()


async def test_a_gemini_key_refused_with_400_falls_back_and_counts_against_the_circuit(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gemini = await FakeGemini(accepted_keys={"some-other-key"}).start()
    try:
        gw = await gateway_factory(
            config("first", gemini.url, fake_openai, "gemini", "gemini-2.5-flash"), env=KEYS
        )
        reply = await answer(gw)
        breaker = gw.gateway.breakers["first"]
    finally:
        await gemini.stop()
    assert reply.choices[0].message.content == "echo: hello"
    assert gw.last_headers["x-gateway-provider"] == "backup"  # type: ignore[attr-defined]
    assert len(gemini.requests) == 1  # a route fault: no retry on the same route
    assert breaker._failures == 1


async def test_an_empty_anthropic_credit_balance_falls_back(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(json_reply(CREDIT_BALANCE_TOO_LOW, status=400))
    gw = await gateway_factory(
        config("first", fake_anthropic.url, fake_openai, "anthropic", "claude-sonnet-4-5"),
        env=KEYS,
    )
    await answer(gw)
    assert gw.last_headers["x-gateway-provider"] == "backup"  # type: ignore[attr-defined]
    assert len(fake_anthropic.requests) == 1


async def test_an_exhausted_openai_quota_is_not_retried_but_falls_back(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[json_reply(INSUFFICIENT_QUOTA, status=429)] * 3)
    gw = await gateway_factory(
        config("first", fake_openai.url, second_openai, "openai", "gpt-4o"), env=KEYS
    )
    await answer(gw)
    assert gw.last_headers["x-gateway-provider"] == "backup"  # type: ignore[attr-defined]
    assert len(fake_openai.requests) == 1


async def test_every_route_rate_limited_is_a_429_with_the_longest_retry_after(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gemini = await FakeGemini().start()
    gemini.enqueue(*[json_reply(resource_exhausted("7.25s"), status=429)] * 3)
    fake_openai.enqueue(
        *[json_reply(rate_limit_error(), status=429, headers={"retry-after": "3"})] * 3
    )
    try:
        gw = await gateway_factory(
            config("first", gemini.url, fake_openai, "gemini", "gemini-2.5-flash"), env=KEYS
        )
        async with gw.openai() as client:
            with pytest.raises(openai.RateLimitError) as caught:
                await client.chat.completions.create(model="m", messages=MESSAGES)
    finally:
        await gemini.stop()
    error = caught.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "8"  # Gemini's RetryInfo, rounded up
    # Gemini's 7.25 s is past max_backoff_ms (50 ms in tests): no retry on the same route;
    # OpenAI's 3 s likewise.
    assert len(gemini.requests) == 1 and len(fake_openai.requests) == 1


async def test_a_daily_quota_falls_back_at_once(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gemini = await FakeGemini().start()
    gemini.enqueue(json_reply(resource_exhausted(None, quota_id="PerDay"), status=429))
    try:
        gw = await gateway_factory(
            config("first", gemini.url, fake_openai, "gemini", "gemini-2.5-flash"), env=KEYS
        )
        await answer(gw)
    finally:
        await gemini.stop()
    assert gw.last_headers["x-gateway-provider"] == "backup"  # type: ignore[attr-defined]
    assert len(gemini.requests) == 1


async def test_a_route_that_cannot_take_the_request_is_skipped_not_fatal(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    """Anthropic returns one choice only: with n=2 the alias's OpenAI route answers."""
    gw = await gateway_factory(
        config("first", fake_anthropic.url, fake_openai, "anthropic", "claude-sonnet-4-5"),
        env=KEYS,
    )
    await answer(gw, n=2)
    headers = gw.last_headers  # type: ignore[attr-defined]
    assert headers["x-gateway-provider"] == "backup"
    assert headers["x-gateway-skipped-routes"] == "first/claude-sonnet-4-5"
    assert headers["x-gateway-attempts"] == "1"
    assert fake_anthropic.requests == []


async def test_when_every_route_refuses_the_client_gets_the_400(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await gateway_factory(
        gateway_toml(
            provider("first", fake_anthropic.url, kind="anthropic", api_key_env="A_KEY"),
            alias("m", ("first", "claude-sonnet-4-5")),
        ),
        env=KEYS,
    )
    async with gw.openai() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="m", messages=MESSAGES, n=2)
    assert caught.value.body["param"] == "n"  # type: ignore[index]
