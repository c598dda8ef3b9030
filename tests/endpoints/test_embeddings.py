"""POST /v1/embeddings through the official SDK: routing, encodings, usage, fallbacks."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_upstream import json_reply


def config(fake: FakeOpenAI, kind: str = "openai_compatible") -> str:
    extra = {"api_key_env": "UP_KEY"} if kind == "mistral" else {}
    return gateway_toml(
        provider("up", fake.url, kind=kind, **extra),
        MOCK,
        '[[models]]\nalias = "emb"\nroutes = [{ provider = "up", model = "text-embedding-3-small", input_price = 0.02, output_price = 0 }]\n',
        # Anthropic has no embeddings API; the route is never called.
        provider("claude", fake.url, kind="anthropic", api_key_env="UP_KEY"),
        alias("chat-only", ("claude", "claude-3-5-haiku")),
        alias("mock-emb", ("demo", "echo")),
    )


async def test_float_embeddings_with_alias_and_usage(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(config(fake_openai))
    async with gw.openai() as client:
        raw = await client.embeddings.with_raw_response.create(
            model="emb", input=["a", "b"], encoding_format="float"
        )
    result = raw.parse()
    assert result.model == "emb"
    assert [d.embedding for d in result.data] == [[0.0, 0.5, -1.25], [1.0, 0.5, -1.25]]
    assert result.usage.prompt_tokens == 8
    assert raw.headers["x-gateway-cost-usd"] == "0.00000016"  # 8 tokens x $0.02 / 1M
    sent = fake_openai.requests[0]
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "float",
    }


async def test_sdk_default_base64_round_trips(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    # The OpenAI SDK asks for base64 by default and decodes it itself.
    gw = await gateway_factory(config(fake_openai, kind="mistral"), env={"UP_KEY": "k"})
    async with gw.openai() as client:
        result = await client.embeddings.create(model="emb", input="hello")
    assert result.data[0].embedding == [0.0, 0.5, -1.25]
    # Mistral cannot encode base64: the gateway asked for floats and encoded them.
    assert "encoding_format" not in fake_openai.requests[0].body


async def test_errors_and_routes_without_an_embeddings_api(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(config(fake_openai), env={"UP_KEY": "k"})
    async with gw.openai() as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.embeddings.create(model="emb", input=[])
        assert bad.value.body["param"] == "input"  # type: ignore[index]
        fake_openai.enqueue(json_reply({"error": {"message": "too long"}}, status=400))
        with pytest.raises(openai.BadRequestError) as upstream:
            await client.embeddings.create(model="emb", input="x")
        assert "too long" in upstream.value.message
        with pytest.raises(openai.APIStatusError) as none:
            await client.embeddings.create(model="chat-only", input="x")
        assert none.value.status_code == 502
        assert "has no embeddings API" in none.value.message


async def test_mock_provider_embeds_deterministically(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = await gateway_factory(config(fake_openai), env={"UP_KEY": "k"})
    async with gw.openai() as client:
        first = await client.embeddings.create(model="mock-emb", input=["same", "other"])
        again = await client.embeddings.create(model="mock-emb", input="same")
    assert len(first.data[0].embedding) == 8
    assert first.data[0].embedding == again.data[0].embedding != first.data[1].embedding
    assert first.usage.prompt_tokens == 2
