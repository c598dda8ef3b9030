"""One gateway in front of the three kinds of route a dialect meets: OpenAI (native for
the Responses API), Claude (native for the Messages API) and Gemini (always translated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_anthropic import FakeAnthropic, message, tool_use_block
from tests.support.fake_anthropic import stream_events as claude_stream
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_gemini import call as gemini_call
from tests.support.fake_gemini import response as gemini_response
from tests.support.fake_gemini import usage as gemini_usage
from tests.support.fake_openai import FakeOpenAI, completion
from tests.support.fake_upstream import json_reply, sse_reply
from tests.support.gateway import RunningGateway

ENV = {"ANTHROPIC_KEY": "sk-ant-test", "OPENAI_KEY": "sk-openai-test", "GEMINI_KEY": "gk-test"}
ROUTE_KINDS = ["gpt", "claude", "gem"]


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    upstream = await FakeGemini().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
def fakes(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> dict[str, Any]:
    return {"claude": fake_anthropic, "gpt": fake_openai, "gem": fake_gemini}


def routes_toml(fakes: dict[str, Any], *extra: str) -> str:
    return gateway_toml(
        provider("anthropic", fakes["claude"].url, kind="anthropic", api_key_env="ANTHROPIC_KEY"),
        provider("openai", fakes["gpt"].url, kind="openai", api_key_env="OPENAI_KEY"),
        f'[providers.google]\ntype = "gemini"\nbase_url = "{fakes["gem"].url}/v1beta"\n'
        'api_key_env = "GEMINI_KEY"\n',
        alias("gpt", ("openai", "gpt-4.1-mini")),
        alias("claude", ("anthropic", "claude-sonnet-4-5")),
        alias("gem", ("google", "gemini-2.5-flash")),
        alias("claude-then-gpt", ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1-mini")),
        alias("gpt-then-claude", ("openai", "gpt-4.1-mini"), ("anthropic", "claude-sonnet-4-5")),
        *extra,
    )


@pytest.fixture
async def gw(gateway_factory: GatewayFactory, fakes: dict[str, Any]) -> RunningGateway:
    return await gateway_factory(routes_toml(fakes), env=ENV)


def script_tool_call(model: str, fake: Any, *, stream: bool = False, chat: bool = False) -> None:
    """The route's provider answers the next request with a call of get_weather(Paris).
    The OpenAI fake's Responses API does so by itself; `chat`: script its chat API."""
    if model == "claude":
        blocks = [tool_use_block("toolu_1", "get_weather", {"city": "Paris"})]
        if stream:
            fake.enqueue(sse_reply(fake, claude_stream(blocks, stop_reason="tool_use")))
        else:
            fake.enqueue(json_reply(message(blocks, stop_reason="tool_use")))
    elif model == "gem":
        reply = gemini_response(
            [gemini_call("get_weather", {"city": "Paris"})], usage=gemini_usage()
        )
        fake.enqueue(sse_reply(fake, [reply]) if stream else json_reply(reply))
    elif chat:
        function = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
        calls = [{"id": "call_1", "type": "function", "function": function}]
        fake.enqueue(json_reply(completion(None, tool_calls=calls, finish_reason="tool_calls")))
