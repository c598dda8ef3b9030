"""The happy paths through the official openai client: plain, streaming, model list."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.fake_openai import FakeOpenAI


def two_route_config(url: str, **retry: object) -> str:
    return f"""
[server]
host = "127.0.0.1"

[[keys]]
name = "dev"
dev_only = true

[providers.primary]
type = "openai_compatible"
base_url = "{url}/v1"
api_key_env = "PRIMARY_KEY"

[providers.demo]
type = "mock"

[[models]]
alias = "chat"
routes = [
  {{ provider = "primary", model = "gpt-upstream" }},
  {{ provider = "demo", model = "echo" }},
]

[retry]
initial_backoff_ms = 1
max_backoff_ms = 50
"""


async def test_plain_completion_through_openai_sdk(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(two_route_config(fake_openai.url), env={"PRIMARY_KEY": "sk-up"})
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi there"}]
        )
    result = raw.parse()
    assert result.model == "chat"
    assert result.choices[0].message.content == "echo: hi there"
    assert result.usage is not None and result.usage.total_tokens == 10
    assert raw.headers["x-gateway-provider"] == "primary"
    assert raw.headers["x-gateway-route-model"] == "gpt-upstream"
    assert raw.headers["x-gateway-attempts"] == "1"
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    sent = fake_openai.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-upstream"
    assert sent.headers["Authorization"] == "Bearer sk-up"
    assert sent.headers["X-Request-Id"] == raw.headers["x-request-id"]


async def test_streaming_through_openai_sdk(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(two_route_config(fake_openai.url), env={"PRIMARY_KEY": "sk-up"})
    async with gw.openai() as client:
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "one two"}], stream=True
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two "
    assert {c.model for c in chunks} == {"chat"}
    assert all(c.usage is None for c in chunks)  # not asked for, so removed again
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert fake_openai.requests[0].body["stream_options"] == {"include_usage": True}


async def test_models_list(gateway_factory: GatewayFactory, fake_openai: FakeOpenAI) -> None:
    gw = await gateway_factory(two_route_config(fake_openai.url), env={"PRIMARY_KEY": "k"})
    async with gw.openai() as client:
        models = await client.models.list()
        one = await client.models.retrieve("chat")
        with pytest.raises(openai.NotFoundError) as missing:
            await client.models.retrieve("nope")
    assert [m.id for m in models.data] == ["chat"]
    assert one.id == "chat" and one.object == "model" and one.owned_by == "llm-gateway"
    assert missing.value.code == "model_not_found"


async def test_bad_key_is_authentication_error(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(two_route_config(fake_openai.url), env={"PRIMARY_KEY": "k"})
    async with gw.openai(key="llmg_wrong") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x"}]
            )
    assert fake_openai.requests == []
