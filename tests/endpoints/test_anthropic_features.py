"""Claude through the OpenAI shape: sampling ranges, thinking, structured output, PDFs.

Each request goes through the official openai SDK to the gateway and on to the strict
Anthropic fake, which refuses what the real Messages API refuses
(tests/support/anthropic_rules.py).
"""

from __future__ import annotations

import base64
from typing import Any

import openai
import pydantic
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.gateway import RunningGateway

HELLO = [{"role": "user", "content": "hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def start(gateway_factory: GatewayFactory, fake: FakeAnthropic, model: str) -> RunningGateway:
    return await gateway_factory(
        gateway_toml(
            provider("claude", fake.url, kind="anthropic", api_key_env="A_KEY"),
            alias("m", ("claude", model)),
        ),
        env={"A_KEY": "sk-ant-test"},
    )


async def test_openai_sampling_ranges_fit_claudes(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic, "claude-sonnet-4-5")
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=HELLO, temperature=1.7, top_p=0.5
        )
    sent = fake_anthropic.requests[0].body
    assert sent["temperature"] == 1.0 and "top_p" not in sent
    assert raw.headers["x-gateway-dropped-params"] == "top_p"


async def test_models_that_refuse_sampling_get_none(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic, "claude-opus-4-7")
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=HELLO, temperature=0.3
        )
    assert "temperature" not in fake_anthropic.requests[0].body
    assert raw.headers["x-gateway-dropped-params"] == "temperature"


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("claude-sonnet-4-5", {"type": "enabled", "budget_tokens": 16384}),
        ("claude-opus-4-6", {"type": "adaptive"}),
    ],
)
async def test_reasoning_effort_thinks_and_thinking_blocks_round_trip_a_tool_loop(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, model: str, thinking: Any
) -> None:
    gw = await start(gateway_factory, fake_anthropic, model)
    async with gw.openai() as client:
        first = await client.chat.completions.create(
            model="m", messages=HELLO, reasoning_effort="high", temperature=0.2, tools=[WEATHER]
        )
        message = first.choices[0].message
        extra = message.model_extra or {}
        assert extra["reasoning_content"] == "Thinking about hello"
        assert extra["thinking_blocks"][0]["signature"] == "sig-0"
        assert first.usage is not None and first.usage.completion_tokens_details is not None
        assert first.usage.completion_tokens_details.reasoning_tokens > 0
        # The second turn of a tool loop: the assistant message goes back as it came, and
        # the fake (like Claude) insists it starts with its signed thinking block.
        history = [
            *HELLO,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
                "thinking_blocks": extra["thinking_blocks"],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        ]
        second = await client.chat.completions.create(
            model="m", messages=history, reasoning_effort="high", tools=[WEATHER]
        )
    assert second.choices[0].message.content == "echo: sunny"
    sent = fake_anthropic.requests[0].body
    assert sent["thinking"] == thinking and "temperature" not in sent
    assert fake_anthropic.requests[1].body["messages"][1]["content"][0]["type"] == "thinking"


async def test_thinking_streams_as_reasoning_content(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic, "claude-sonnet-4-5")
    async with gw.openai() as client:
        stream = await client.chat.completions.create(
            model="m", messages=HELLO, reasoning_effort="low", stream=True
        )
        deltas = [c.choices[0].delta for c in [c async for c in stream] if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    blocks = [b for d in deltas for b in (d.model_extra or {}).get("thinking_blocks") or ()]
    assert reasoning == "Thinking about hello"
    assert blocks == [
        {"type": "thinking", "thinking": "Thinking about hello", "signature": "sig-0"}
    ]
    assert "".join(d.content or "" for d in deltas) == "echo: hello"


class Echo(pydantic.BaseModel):
    echo: str


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-opus-4-1"])
async def test_structured_output_parses_on_every_generation(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, model: str, stream: bool
) -> None:
    """Structured outputs (output_config.format) from 4.5 on; a forced tool call before."""
    gw = await start(gateway_factory, fake_anthropic, model)
    async with gw.openai() as client:
        if stream:
            async with client.chat.completions.stream(
                model="m", messages=HELLO, response_format=Echo
            ) as events:
                completion = await events.get_final_completion()
        else:
            completion = await client.chat.completions.parse(
                model="m", messages=HELLO, response_format=Echo
            )
    choice = completion.choices[0]
    assert choice.message.parsed == Echo(echo="hello")
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    sent = fake_anthropic.requests[0].body
    if model == "claude-sonnet-4-5":
        assert sent["output_config"]["format"]["type"] == "json_schema"
    else:
        assert sent["tool_choice"] == {"type": "tool", "name": "gateway_json_answer"}


async def test_a_pdf_file_part_becomes_a_document_and_audio_is_refused_by_name(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic, "claude-sonnet-4-5")
    pdf = base64.b64encode(b"%PDF-1.4 a tiny pdf").decode()
    async with gw.openai() as client:
        await client.chat.completions.create(
            model="m",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "summarise"},
                        {
                            "type": "file",
                            "file": {
                                "filename": "a.pdf",
                                "file_data": f"data:application/pdf;base64,{pdf}",
                            },
                        },
                    ],
                }
            ],
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="m",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_audio",
                                "input_audio": {"data": "AAAA", "format": "wav"},
                            }
                        ],
                    }
                ],
            )
    block = fake_anthropic.requests[0].body["messages"][0]["content"][1]
    assert block == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
    }
    assert caught.value.body["param"] == "messages[0].content[0]"  # type: ignore[index]
    assert len(fake_anthropic.requests) == 1  # the audio never reached the provider
