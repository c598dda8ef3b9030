"""Streaming: fallback before the first byte, error events after it, usage, disconnects."""

from __future__ import annotations

import asyncio

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, chunk, stream_events, usage_chunk
from tests.support.fake_upstream import Pause, Raw, Reset, json_reply, sse_reply
from tests.support.gateway import KEY

MESSAGES = [{"role": "user", "content": "hello"}]


def two_providers(a: FakeOpenAI, b: FakeOpenAI, **kwargs: object) -> str:
    return gateway_toml(
        provider("a", a.url, idle_timeout_s=0.3),
        provider("b", b.url),
        alias("m", ("a", "model-a"), ("b", "model-b")),
        attempts=0,
        **kwargs,  # type: ignore[arg-type]
    )


async def collect(gw, **kwargs) -> tuple[list, httpx.Headers]:  # type: ignore[no-untyped-def]
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES, stream=True, **kwargs
        )
        chunks = [c async for c in raw.parse()]
    return chunks, raw.headers


def text_of(chunks: list) -> str:  # type: ignore[type-arg]
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_error_before_first_content_falls_back(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    # A role-only chunk is held back, so the reset after it can still fall back.
    fake_openai.enqueue(
        sse_reply(fake_openai, [chunk({"role": "assistant", "content": ""}), Reset()])
    )
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    chunks, headers = await collect(gw)
    assert text_of(chunks) == "echo: hello "
    assert headers["x-gateway-provider"] == "b"
    assert headers["x-gateway-attempts"] == "2"


@pytest.mark.parametrize(
    "reply",
    ["status_503", "garbage", "error_event", "empty_stream"],
)
async def test_early_failures_of_every_kind_fall_back(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    second_openai: FakeOpenAI,
    reply: str,
) -> None:
    replies = {
        "status_503": json_reply({"error": {"message": "overloaded"}}, status=503),
        "garbage": sse_reply(fake_openai, [Raw(b"data: {not json\n\n")]),
        "error_event": sse_reply(fake_openai, [{"error": {"message": "boom"}}]),
        "empty_stream": sse_reply(fake_openai, []),
    }
    fake_openai.enqueue(replies[reply])
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    chunks, headers = await collect(gw)
    assert headers["x-gateway-provider"] == "b"
    assert text_of(chunks) == "echo: hello "


async def test_every_route_failing_before_the_stream_is_an_http_error(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(json_reply({"error": {"message": "x"}}, status=503))
    second_openai.enqueue(json_reply({"error": {"message": "y"}}, status=500))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    with pytest.raises(openai.APIStatusError) as caught:
        await collect(gw)
    assert caught.value.status_code == 502
    assert caught.value.response.headers["content-type"] == "application/json"


async def test_reset_after_first_content_ends_with_an_error_event(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    events = [chunk({"role": "assistant", "content": ""}), chunk({"content": "partial"}), Reset()]
    fake_openai.enqueue(sse_reply(fake_openai, events))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    async with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response,
    ):
        body = b"".join([part async for part in response.aiter_bytes()])
    events_out = [e for e in body.split(b"\n\n") if e]
    assert b"partial" in events_out[-2]
    last = orjson.loads(events_out[-1].removeprefix(b"data: "))
    assert last["error"]["code"] == "upstream_stream_error"
    assert b"[DONE]" not in body
    assert second_openai.requests == []

    # The SDK surfaces it as an error, not as a complete answer.
    fake_openai.enqueue(sse_reply(fake_openai, events))
    with pytest.raises(openai.APIError):
        await collect(gw)


async def test_stall_after_first_content_hits_the_idle_timeout(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    events = [chunk({"content": "partial"}), Pause(5), chunk({"content": "never"})]
    fake_openai.enqueue(sse_reply(fake_openai, events))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    with pytest.raises(openai.APIError) as caught:
        await asyncio.wait_for(collect(gw), 3)
    assert "no stream event" in str(caught.value) or "timeout" in str(caught.value)


async def test_stream_ending_without_done_is_an_error_not_a_complete_answer(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(sse_reply(fake_openai, [chunk({"content": "cut"})]))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    with pytest.raises(openai.APIError):
        await collect(gw)


async def test_usage_chunk_is_relayed_when_the_client_asks(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    chunks, _ = await collect(gw, stream_options={"include_usage": True})
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 7
    assert chunks[-1].model == "m"


async def test_usage_on_a_content_chunk_is_removed_when_not_asked(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    final = chunk({"content": "x"}, "stop")
    final["usage"] = usage_chunk()["usage"]
    fake_openai.enqueue(sse_reply(fake_openai, [final, b"[DONE]"]))
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    chunks, _ = await collect(gw)
    assert text_of(chunks) == "x"
    assert all(c.usage is None for c in chunks)


async def test_client_disconnect_closes_the_upstream_within_a_second(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    """With no usage drain, a client that leaves ends the upstream stream at once."""
    words = [f"w{i} " for i in range(200)]
    fake_openai.enqueue(sse_reply(fake_openai, stream_events(words, pause=0.05)))
    gw = await gateway_factory(
        two_providers(fake_openai, second_openai) + "\n[budgets]\nusage_drain_s = 0\n"
    )
    async with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response,
    ):
        async for part in response.aiter_bytes():
            if b"w1" in part:
                break
    left_at = asyncio.get_running_loop().time()
    for _ in range(100):
        log = fake_openai.streams[0]
        if log.peer_gone_at is not None:
            break
        await asyncio.sleep(0.02)
    assert log.peer_gone_at is not None and log.peer_gone_at - left_at < 1.0
    assert not log.finished
    assert log.sent < 100


async def test_client_disconnect_cancels_a_plain_request(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, second_openai: FakeOpenAI
) -> None:
    gone = asyncio.Event()

    async def slow(request):  # type: ignore[no-untyped-def]
        # aiohttp does not cancel handlers on disconnect: watch the connection instead.
        for _ in range(500):
            if request.transport is None or request.transport.is_closing():
                gone.set()
                break
            await asyncio.sleep(0.01)
        return await json_reply({"error": {"message": "late"}}, status=500)(request)

    fake_openai.enqueue(slow)
    gw = await gateway_factory(two_providers(fake_openai, second_openai))
    async with gw.http() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": MESSAGES},
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=0.3,
            )
    await asyncio.wait_for(gone.wait(), 1.0)
