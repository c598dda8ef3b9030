"""Routing and failure: retries, backoff, fallback order, circuits, deadlines."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from aiohttp import web

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, completion
from tests.support.fake_upstream import hang, json_reply, reset
from tests.support.gateway import KEY

MESSAGES = [{"role": "user", "content": "hello"}]


def two_providers(a: FakeOpenAI, b: FakeOpenAI, **kwargs: object) -> str:
    return gateway_toml(
        provider("a", a.url),
        provider("b", b.url),
        alias("m", ("a", "model-a"), ("b", "model-b")),
        **kwargs,  # type: ignore[arg-type]
    )


async def create(gw, **kwargs):  # type: ignore[no-untyped-def]
    async with gw.openai() as client:
        return await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, **kwargs
        )


async def test_503_is_retried_on_the_same_route_then_succeeds(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(json_reply({"error": {"message": "busy"}}, status=503))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    raw = await create(gw)
    assert raw.headers["x-gateway-provider"] == "a"
    assert raw.headers["x-gateway-attempts"] == "2"
    assert len(fake_openai.requests) == 2 and second_openai.requests == []


async def test_persistent_failure_falls_back_in_order(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[json_reply({"error": {"message": "down"}}, status=500)] * 2)
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    raw = await create(gw)
    assert raw.headers["x-gateway-provider"] == "b"
    assert raw.headers["x-gateway-route-model"] == "model-b"
    assert raw.headers["x-gateway-attempts"] == "3"
    assert second_openai.requests[0].body["model"] == "model-b"


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_route_faults_move_on_without_retry_and_never_reach_the_client(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    second_openai: FakeOpenAI,
    status: int,
) -> None:
    fake_openai.enqueue(json_reply({"error": {"message": "bad key sk-secret"}}, status=status))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    raw = await create(gw)
    assert raw.status_code == 200
    assert raw.headers["x-gateway-provider"] == "b"
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_request_faults_are_returned_at_once_with_the_upstream_message(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    second_openai: FakeOpenAI,
    status: int,
) -> None:
    fake_openai.enqueue(
        json_reply(
            {"error": {"message": "temperature too high", "param": "temperature"}},
            status=status,
            headers={"set-cookie": "upstream-secret=1", "openai-organization": "org-x"},
        )
    )
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    async with gw.http() as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] == "temperature too high"
    assert error["param"] == "temperature"
    assert "set-cookie" not in response.headers and "openai-organization" not in response.headers
    assert response.headers["x-gateway-attempts"] == "1"
    assert second_openai.requests == []


async def test_every_route_failing_is_502_listing_each_attempt(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[json_reply({"error": {"message": "a is down"}}, status=503)] * 2)
    second_openai.enqueue(*[reset()] * 2)
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    with pytest.raises(openai.APIStatusError) as caught:
        await create(gw)
    assert caught.value.status_code == 502
    message = caught.value.message
    assert "a/model-a: HTTP 503: a is down" in message
    assert "b/model-b: connection failed" in message
    assert caught.value.response.headers["x-gateway-attempts"] == "4"


async def test_retry_after_sets_the_delay_and_too_long_skips_the_route(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        json_reply({"error": {"message": "slow down"}}, 429, {"Retry-After": "0.3"})
    )
    gw = await gateway_factory(two_providers(fake_openai, second_openai, max_backoff_ms=1000))
    started = time.perf_counter()
    raw = await create(gw)
    assert time.perf_counter() - started >= 0.3
    assert raw.headers["x-gateway-provider"] == "a"

    fake_openai.enqueue(json_reply({"error": {"message": "slow down"}}, 429, {"Retry-After": "30"}))
    started = time.perf_counter()
    raw = await create(gw)
    assert time.perf_counter() - started < 1
    assert raw.headers["x-gateway-provider"] == "b"


async def test_first_byte_timeout_moves_on_and_all_timeouts_are_504(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    toml = gateway_toml(
        provider("a", fake_openai.url, first_byte_timeout_s=0.2),
        provider("b", second_openai.url, first_byte_timeout_s=0.2),
        alias("m", ("a", "model-a"), ("b", "model-b")),
        attempts=0,
    )
    fake_openai.enqueue(hang())
    gw = await gateway_factory(toml)
    raw = await create(gw)
    assert raw.headers["x-gateway-provider"] == "b"

    fake_openai.enqueue(hang())
    second_openai.enqueue(hang())
    with pytest.raises(openai.APIStatusError) as caught:
        await create(gw)
    assert caught.value.status_code == 504
    assert "timed out" in caught.value.message or "no response headers" in caught.value.message


async def test_deadline_bounds_every_attempt_together(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(hang())
    gw = await gateway_factory(two_providers(fake_openai, second_openai, deadline_s=0.4))
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as caught:
        await create(gw)
    assert caught.value.status_code == 504
    assert time.perf_counter() - started < 2
    assert "deadline" in caught.value.message


async def test_circuit_opens_after_threshold_and_recovers_after_cooldown(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[json_reply({"error": {"message": "down"}}, status=500)] * 2)
    gw = await gateway_factory(
        two_providers(fake_openai, second_openai, attempts=0, threshold=2, cooldown_s=0.5)
    )
    for _ in range(2):
        assert (await create(gw)).headers["x-gateway-provider"] == "b"
    # Open: a is skipped without being called.
    calls = len(fake_openai.requests)
    raw = await create(gw)
    assert raw.headers["x-gateway-provider"] == "b"
    assert raw.headers["x-gateway-attempts"] == "1"
    assert len(fake_openai.requests) == calls
    await asyncio.sleep(0.6)
    # Half-open: one probe goes to a; it succeeds and the circuit closes.
    assert (await create(gw)).headers["x-gateway-provider"] == "a"
    assert (await create(gw)).headers["x-gateway-provider"] == "a"


async def test_every_circuit_open_still_tries_routes_in_order(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    toml = gateway_toml(
        provider("a", fake_openai.url), alias("m", ("a", "model-a")), attempts=0, threshold=1
    )
    fake_openai.enqueue(json_reply({"error": {"message": "down"}}, status=500))
    gw = await gateway_factory(toml)
    with pytest.raises(openai.APIStatusError):
        await create(gw)
    raw = await create(gw)  # circuit open, but it is the only route: tried anyway
    assert raw.headers["x-gateway-provider"] == "a"


async def test_weighted_strategy_spreads_first_choice_by_weight(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    toml = gateway_toml(
        provider("a", fake_openai.url),
        provider("b", second_openai.url),
        '[[models]]\nalias = "m"\nstrategy = "weighted"\nroutes = [\n'
        '{ provider = "a", model = "x", weight = 3 },\n'
        '{ provider = "b", model = "y", weight = 1 }]\n',
    )
    gw = await gateway_factory(toml)
    async with gw.http() as http:
        for _ in range(80):
            response = await http.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": MESSAGES},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert response.status_code == 200
    assert 40 <= len(fake_openai.requests) <= 75
    assert len(second_openai.requests) == 80 - len(fake_openai.requests)


async def test_least_latency_prefers_the_faster_route(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    toml = gateway_toml(
        provider("slow", fake_openai.url),
        '[providers.fast]\ntype = "mock"\n',
        alias("m", ("slow", "x"), ("fast", "echo"), strategy="least_latency"),
    )

    async def slow(request):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.05)
        return await json_reply(completion())(request)

    fake_openai.enqueue(*[slow] * 20)
    gw = await gateway_factory(toml)
    providers = [(await create(gw)).headers["x-gateway-provider"] for _ in range(6)]
    # Both get measured first, then the fast one wins every time.
    assert providers[2:] == ["fast"] * 4


async def test_mock_provider_serves_the_demo_alias(gateway_factory: GatewayFactory) -> None:
    gw = await gateway_factory(gateway_toml(MOCK, alias("m", ("demo", "echo"))))
    raw = await create(gw)
    body = raw.parse()
    assert body.choices[0].message.content == "echo: hello"
    assert body.usage.prompt_tokens == 1 and body.usage.completion_tokens == 3


async def test_a_body_that_stops_midway_is_timed_out_and_the_next_route_answers(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    """A body read whole at once arms no deadline; one that stalls still meets it."""

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/json"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b'{"id": "chatcmpl-1", ')
        await asyncio.sleep(30)
        return response

    toml = gateway_toml(
        provider("a", fake_openai.url, total_timeout_s=0.5),
        provider("b", second_openai.url),
        alias("m", ("a", "model-a"), ("b", "model-b")),
        attempts=0,
    )
    fake_openai.enqueue(stalls)
    gw = await gateway_factory(toml)
    started = time.perf_counter()
    raw = await create(gw)
    assert raw.headers["x-gateway-provider"] == "b" and raw.headers["x-gateway-attempts"] == "2"
    assert 0.5 <= time.perf_counter() - started < 2  # not the 30 s the body would take
