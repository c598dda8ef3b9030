"""OpenAI reasoning models, DeepSeek and Mistral through the gateway, against fakes that
refuse what each of those APIs refuses (tests/support/fake_openai.py, DIALECTS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, chunk, completion
from tests.support.fake_upstream import json_reply, sse_reply
from tests.support.gateway import RunningGateway

HELLO = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hello"}]


@pytest.fixture
async def deepseek() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI(dialect="deepseek").start()
    yield fake  # type: ignore[misc]
    await fake.stop()


@pytest.fixture
async def mistral() -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI(dialect="mistral").start()
    yield fake  # type: ignore[misc]
    await fake.stop()


async def start(
    gateway_factory: GatewayFactory, fake: FakeOpenAI, kind: str, model: str
) -> RunningGateway:
    return await gateway_factory(
        gateway_toml(provider("p", fake.url, kind=kind, api_key_env="K"), alias("m", ("p", model))),
        env={"K": "sk-test"},
    )


@pytest.mark.parametrize("model", ["gpt-5", "o4-mini", "o3"])
async def test_reasoning_models_get_no_sampling_and_max_completion_tokens(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, model: str
) -> None:
    gw = await start(gateway_factory, fake_openai, "openai", model)
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m",
            messages=HELLO,
            temperature=0.5,
            top_p=0.9,
            max_tokens=50,
            presence_penalty=0.1,
        )
    sent = fake_openai.requests[0].body
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent
    assert "temperature" not in sent and "top_p" not in sent
    assert sent["messages"][0]["role"] == "developer"
    dropped = raw.headers["x-gateway-dropped-params"].split(",")
    assert sorted(dropped) == ["presence_penalty", "temperature", "top_p"]


async def test_chat_models_keep_their_sampling(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await start(gateway_factory, fake_openai, "openai", "gpt-5-chat-latest")
    async with gw.openai() as client:
        await client.chat.completions.create(model="m", messages=HELLO, temperature=0.5)
    assert fake_openai.requests[0].body["temperature"] == 0.5


async def test_deepseek_takes_developer_as_system_and_prices_its_cache_hits(
    gateway_factory: GatewayFactory, deepseek: FakeOpenAI
) -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "total_tokens": 1100,
        "prompt_cache_hit_tokens": 800,
        "prompt_cache_miss_tokens": 200,
    }
    deepseek.enqueue(json_reply(completion("hi", usage=usage)))
    gw = await start(gateway_factory, deepseek, "deepseek", "deepseek-chat")
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert deepseek.requests[0].body["messages"][0]["role"] == "system"
    # 200 missed at $0.28, 800 hit at $0.028 and 100 out at $0.42, per 1M tokens.
    expected = (200 * Decimal("0.28") + 800 * Decimal("0.028") + 100 * Decimal("0.42")) / 10**6
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected


@pytest.mark.parametrize("stream", [False, True])
async def test_mistral_reasoning_answers_become_a_string_and_reasoning_content(
    gateway_factory: GatewayFactory, mistral: FakeOpenAI, stream: bool
) -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "The user greets."}]}
    answer = {"type": "text", "text": "Hello!"}
    if stream:
        events = [
            chunk({"role": "assistant", "content": [thinking]}, with_usage_null=False),
            chunk({"content": [answer]}, with_usage_null=False),
            {
                **chunk({}, "stop", with_usage_null=False),
                "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
            },
            b"[DONE]",
        ]
        mistral.enqueue(sse_reply(mistral, events))
    else:
        reply = completion(None)
        reply["choices"][0]["message"]["content"] = [thinking, answer]
        mistral.enqueue(json_reply(reply))
    gw = await start(gateway_factory, mistral, "mistral", "magistral-medium-latest")
    async with gw.openai() as client:
        if stream:
            parts = [
                c
                async for c in await client.chat.completions.create(
                    model="m", messages=HELLO, stream=True, reasoning_effort="high"
                )
            ]
            deltas = [c.choices[0].delta for c in parts if c.choices]
            content = "".join(d.content or "" for d in deltas)
            reasoning = "".join(
                (d.model_extra or {}).get("reasoning_content") or "" for d in deltas
            )
        else:
            message = (
                (
                    await client.chat.completions.create(
                        model="m", messages=HELLO, reasoning_effort="high"
                    )
                )
                .choices[0]
                .message
            )
            content, reasoning = (
                message.content or "",
                (message.model_extra or {})["reasoning_content"],
            )
    assert (content, reasoning) == ("Hello!", "The user greets.")
    sent = mistral.requests[0].body
    assert sent["reasoning_effort"] == "high"  # Mistral takes it now; and nothing extra was sent
