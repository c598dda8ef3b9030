"""POST /v1/messages end to end: the anthropic SDK -> the gateway -> each kind of route.

The Claude route is called natively (the client's body, untranslated); the OpenAI and
Gemini routes through their adapters, the answer rendered back as a Messages answer.
The fakes refuse what the real APIs refuse, so a wrong translation fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.dialects.conftest import ENV, ROUTE_KINDS, script_tool_call
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_anthropic import FakeAnthropic, text_block
from tests.support.fake_anthropic import error_event as claude_error_event
from tests.support.fake_anthropic import stream_events as claude_stream
from tests.support.fake_openai import FakeOpenAI, rate_limit_error
from tests.support.fake_openai import stream_events as openai_stream_events
from tests.support.fake_upstream import Reset, json_reply, sse_reply
from tests.support.gateway import KEY, RunningGateway
from tests.test_accounting import wait_rows

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_create_on_every_kind_of_route(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    async with gw.anthropic() as client:
        raw = await client.messages.with_raw_response.create(
            model=model,
            max_tokens=256,
            system="Be brief.",
            messages=[{"role": "user", "content": "hello there"}],
        )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model  # the alias, never the route's model
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("echo: hello there")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-gateway-cost-usd"] != "unknown"
    sent = fakes[model].requests[-1]
    if model == "claude":  # native: the client's own body, the route's model
        assert sent.body["system"] == "Be brief."
        assert sent.body["model"] == "claude-sonnet-4-5"
        assert sent.headers["x-api-key"] == "sk-ant-test"
    elif model == "gpt":
        assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent.body["max_completion_tokens"] == 256


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_stream_on_every_kind_of_route(gw: RunningGateway, model: str) -> None:
    async with (
        gw.anthropic() as client,
        client.messages.stream(
            model=model, max_tokens=256, messages=[{"role": "user", "content": "stream me"}]
        ) as stream,
    ):
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts).startswith("echo: stream me")
    assert final.model == model
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


async def test_raw_stream_events_follow_the_documented_order(gw: RunningGateway) -> None:
    async with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/messages",
            headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
            json={
                "model": "gpt",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "a b c"}],
            },
        ) as response,
    ):
        body = (await response.aread()).decode()
    assert response.status_code == 200
    names = [line[7:] for line in body.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 1
    assert "[DONE]" not in body


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_tool_loop_on_every_kind_of_route(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    script_tool_call(model, fakes[model], chat=True)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with gw.anthropic() as client:
        first = await client.messages.create(
            model=model,
            max_tokens=256,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "tool", "name": "get_weather"},
            messages=messages,
        )
        assert first.stop_reason == "tool_use"
        use = next(b for b in first.content if b.type == "tool_use")
        assert use.name == "get_weather" and isinstance(use.input, dict)
        messages += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "18C and sunny"},
                    {"type": "text", "text": "Thanks."},
                ],
            },
        ]
        second = await client.messages.create(
            model=model, max_tokens=256, tools=[WEATHER_TOOL], messages=messages
        )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    sent = fakes[model].requests[-1].body
    if model == "gpt":  # the tool result goes before the rest of the user's turn
        roles = [m["role"] for m in sent["messages"]]
        assert roles[-3:] == ["assistant", "tool", "user"]
        assert sent["messages"][-2]["content"] == "18C and sunny"


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_count_tokens_on_every_kind_of_route(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    async with gw.anthropic() as client:
        raw = await client.messages.with_raw_response.count_tokens(
            model=model, messages=[{"role": "user", "content": "count these few words please"}]
        )
    assert raw.parse().input_tokens > 0
    if model == "claude":
        assert raw.headers["x-gateway-token-count"] == "provider"
        assert fakes["claude"].requests[-1].path == "/v1/messages/count_tokens"
    else:
        assert raw.headers["x-gateway-token-count"] == "estimate"
        assert not fakes[model].requests  # nothing was sent: counting costs nothing


async def test_x_api_key_and_bearer_both_authenticate(gw: RunningGateway) -> None:
    async with gw.anthropic(key="", auth_token=KEY) as client:  # Authorization: Bearer
        message = await client.messages.create(
            model="gpt", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content
    async with gw.anthropic(key="llmg_not_a_key") as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(
                model="gpt", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "llmg_not_a_key" not in str(caught.value.body)


async def test_errors_use_anthropics_shape(gw: RunningGateway) -> None:
    async with gw.anthropic() as client:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(
                model="no-such-alias", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(anthropic.BadRequestError) as bad:
            await client.messages.create(
                model="gpt",
                max_tokens=0,
                messages=[{"role": "user", "content": "hi"}],
            )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in bad.value.body["error"]["message"]  # type: ignore[index]


async def test_an_exhausted_alias_is_overloaded_529(
    gw: RunningGateway, fake_openai: FakeOpenAI
) -> None:
    fake_openai.answer_by_default(json_reply({"error": {"message": "boom"}}, status=500))
    async with gw.anthropic() as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model="gpt", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_fallback_from_claude_to_another_provider(
    gw: RunningGateway, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake_anthropic.answer_by_default(json_reply(overloaded, status=529))
    async with gw.anthropic() as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-then-gpt", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
    assert raw.headers["x-gateway-provider"] == "openai"
    assert raw.parse().content[0].text == "echo: hi"  # type: ignore[union-attr]
    assert fake_openai.requests


async def test_server_tools_skip_routes_that_cannot_run_them(
    gw: RunningGateway, fake_openai: FakeOpenAI
) -> None:
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    async with gw.anthropic() as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                model="gpt",
                max_tokens=16,
                tools=[web_search],  # type: ignore[list-item]
                messages=[{"role": "user", "content": "search"}],
            )
        native = await client.messages.with_raw_response.create(
            model="claude-then-gpt",
            max_tokens=16,
            tools=[web_search],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "search"}],
        )
    assert "only Claude routes" in caught.value.body["error"]["message"]  # type: ignore[index]
    assert not fake_openai.requests
    assert native.headers["x-gateway-provider"] == "anthropic"


async def test_rate_limit_and_budget_apply(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(json_reply(rate_limit_error(), status=429, headers={"retry-after": "7"}))
    toml = gateway_toml(
        provider("openai", fake_openai.url, kind="openai", api_key_env="OPENAI_KEY"),
        alias("gpt", ("openai", "gpt-4.1-mini")),
    )
    gw = await gateway_factory(toml, env=ENV)
    async with gw.anthropic() as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(
                model="gpt", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_models_list_in_anthropics_shape(gw: RunningGateway) -> None:
    async with gw.anthropic() as client:
        page = await client.models.list()
        one = await client.models.retrieve("gpt")
    assert [m.id for m in page.data] == [
        "gpt",
        "claude",
        "gem",
        "claude-then-gpt",
        "gpt-then-claude",
    ]
    assert page.data[0].type == "model" and page.data[0].display_name == "gpt"
    assert one.id == "gpt"
    async with gw.openai() as openai_client:  # without anthropic-version: OpenAI's shape
        listed = await openai_client.models.list()
    assert listed.data[0].object == "model"


async def test_every_request_has_its_log_row(gw: RunningGateway) -> None:
    async with gw.anthropic() as client:
        await client.messages.create(
            model="gpt", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        await client.messages.count_tokens(
            model="gpt", messages=[{"role": "user", "content": "hi"}]
        )
    async with httpx.AsyncClient(base_url=gw.url) as http:
        bad = await http.post(
            "/v1/messages?beta=true",
            headers={"x-api-key": KEY},
            content=orjson.dumps({"model": "gpt", "messages": []}),
        )
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    found = await wait_rows(Path(gw.config.storage.database), 3)
    assert [(r["api"], r["http_status"]) for r in found] == [
        ("messages", 200),
        ("count_tokens", 200),
        ("messages", 400),
    ]
    assert found[0]["cost_nano"] > 0 and not found[1]["cost_nano"]


@pytest.mark.parametrize("model", ["claude", "gpt"])
async def test_a_stream_that_fails_midway_ends_with_an_error_event(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    if model == "claude":  # native: Claude's own error event, after content went out
        events = claude_stream([text_block("one two three four")])[:4]
        fakes["claude"].enqueue(sse_reply(fakes["claude"], [*events, claude_error_event()]))
    else:  # translated: the connection drops after the first words
        words = openai_stream_events(["one ", "two "])[:3]
        fakes["gpt"].enqueue(sse_reply(fakes["gpt"], [*words, Reset()]))
    async with gw.anthropic() as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            async with client.messages.stream(
                model=model, max_tokens=64, messages=[{"role": "user", "content": "go"}]
            ) as stream:
                async for _ in stream:
                    pass
    assert "mid-stream" in str(caught.value.body)
    rows = await wait_rows(Path(gw.config.storage.database), 1)
    assert rows[-1]["error_type"] == "upstream_stream_error"
    assert rows[-1]["cost_nano"] > 0  # what was generated is still paid for
