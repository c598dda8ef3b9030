"""The fake Anthropic's token counting (POST /v1/messages/count_tokens), against the
official anthropic SDK pointed straight at the fake (no gateway in between)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.fake_anthropic import FakeAnthropic, count_input_tokens
from tests.support.fake_upstream import json_reply

MODEL = "claude-sonnet-4-5"
HELLO: Any = [{"role": "user", "content": "count these four words"}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def client(fake_anthropic: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=fake_anthropic.url, api_key="sk-ant-test", max_retries=0
    ) as sdk:
        yield sdk


async def test_count_tokens_answers_a_deterministic_count(
    client: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic
) -> None:
    counted = await client.messages.count_tokens(
        model=MODEL, messages=HELLO, system="Be brief.", tools=[WEATHER_TOOL]
    )
    # 4 words + 2 (system) + 6 (the tool's name and description) + 3 for the one message
    assert counted.input_tokens == 15
    sent = fake_anthropic.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/messages/count_tokens")
    assert "max_tokens" not in sent.body
    assert counted.input_tokens == count_input_tokens(sent.body)


async def test_count_tokens_counts_a_tool_round_trip_and_thinking(
    client: anthropic.AsyncAnthropic,
) -> None:
    messages: Any = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
        },
    ]
    counted = await client.messages.count_tokens(
        model=MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    # texts 3 + thinking 3 + tool_use input 1 + tool_result 1 + the tool 6 + 3 messages * 3
    assert counted.input_tokens == 3 + 3 + 1 + 1 + 6 + 9


async def test_the_beta_client_adds_a_query_the_fake_ignores(
    client: anthropic.AsyncAnthropic, fake_anthropic: FakeAnthropic
) -> None:
    counted = await client.beta.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens == 7
    assert fake_anthropic.requests[-1].query == {"beta": "true"}
    message = await client.beta.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: count these four words"
    assert fake_anthropic.requests[-1].path == "/v1/messages"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"extra_body": {"max_tokens": 1024}}, "max_tokens: Extra inputs are not permitted"),
        ({"extra_body": {"stream": True}}, "stream: Extra inputs are not permitted"),
        ({"extra_body": {"temperature": 0.5}}, "temperature: Extra inputs are not permitted"),
        ({"messages": []}, "messages: at least one message is required"),
        (
            {"messages": [{"role": "system", "content": "hi"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 100}},
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}
                        ],
                    }
                ]
            },
            "unexpected `tool_use_id` found in `tool_result` blocks",
        ),
    ],
    ids=[
        "max_tokens",
        "stream",
        "temperature",
        "no messages",
        "system role",
        "budget",
        "orphan result",
    ],
)
async def test_count_tokens_refuses_what_the_api_refuses(
    client: anthropic.AsyncAnthropic,
    fake_anthropic: FakeAnthropic,
    fields: dict[str, Any],
    message: str,
) -> None:
    fake_anthropic.enqueue(json_reply({"input_tokens": -1}))  # scripted: must stay queued
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.count_tokens(**({"model": MODEL, "messages": HELLO} | fields))
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]
    assert len(fake_anthropic.queue) == 1


async def test_count_tokens_checks_the_headers(fake_anthropic: FakeAnthropic) -> None:
    body = {"model": MODEL, "messages": HELLO}
    async with httpx.AsyncClient(base_url=fake_anthropic.url) as http:
        keyless = await http.post(
            "/v1/messages/count_tokens", json=body, headers={"anthropic-version": "2023-06-01"}
        )
        versionless = await http.post(
            "/v1/messages/count_tokens?beta=true", json=body, headers={"x-api-key": "k"}
        )
    assert keyless.status_code == 401
    assert keyless.json()["error"]["type"] == "authentication_error"
    assert versionless.status_code == 400


async def test_messages_still_requires_max_tokens(fake_anthropic: FakeAnthropic) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=fake_anthropic.url, headers=headers) as http:
        refused = await http.post(
            "/v1/messages?beta=true", json={"model": MODEL, "messages": HELLO}
        )
        other = await http.post("/v1/messages/batches", json={"model": MODEL, "messages": HELLO})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "max_tokens: Field required"
    assert other.status_code == 404
