"""The Anthropic provider end to end: the openai SDK -> the gateway -> a fake Messages API.

Every test also checks what reached the fake (auth headers, translated body), and the fake
refuses requests the real API would refuse, so a wrong translation cannot pass unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_anthropic import (
    FakeAnthropic,
    error_body,
    error_event,
    message,
    stream_events,
    text_block,
    tool_use_block,
    usage,
)
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_upstream import json_reply, sse_reply
from tests.support.gateway import RunningGateway

FIXTURES = Path(__file__).parent.parent / "providers" / "fixtures" / "anthropic"
ENV = {"ANTHROPIC_KEY": "sk-ant-test"}
HELLO: Any = [{"role": "user", "content": "hello"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            # The SDK's stream helper only accepts strict tools; the adapter ignores the flag.
            "strict": True,
        },
    }
]
TOOL_BLOCKS = [
    text_block("Checking both."),
    tool_use_block("toolu_01Paris", "get_weather", {"city": "Paris", "unit": "c"}),
    tool_use_block("toolu_01Oslo", "get_weather", {"city": "Oslo"}),
]


async def start(
    factory: GatewayFactory, fake: FakeAnthropic, backup: FakeOpenAI | None = None, **retry: Any
) -> RunningGateway:
    sections = [provider("claude", fake.url, kind="anthropic", api_key_env="ANTHROPIC_KEY")]
    routes = [("claude", "claude-sonnet-4-5")]
    if backup is not None:
        sections.append(provider("backup", backup.url))
        routes.append(("backup", "gpt-backup"))
    return await factory(gateway_toml(*sections, alias("m", *routes), **retry), env=ENV)


async def collect(gw: RunningGateway, **kwargs: Any) -> tuple[list[Any], Any]:
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", stream=True, **({"messages": HELLO} | kwargs)
        )
        return [c async for c in raw.parse()], raw.headers


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_of(chunks: list[Any]) -> str | None:
    return next(
        (c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason),
        None,
    )


# --- round trips --------------------------------------------------------------------------


async def test_plain_text_with_system_prompt(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic)
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi there"},
            ],
        )
    result = raw.parse()
    assert result.model == "m"
    assert result.id == "chatcmpl-msg_fake"
    assert result.choices[0].message.content == "echo: hi there"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 5)
    assert result.usage.total_tokens == 17
    assert raw.headers["x-gateway-provider"] == "claude"
    assert "x-gateway-dropped-params" not in raw.headers
    sent = fake_anthropic.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64000,  # no cap from the client: the model's own output limit
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
    }


async def test_streamed_text(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic)
    chunks, headers = await collect(
        gw,
        messages=[{"role": "user", "content": "one two"}],
        stream_options={"include_usage": True},
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "echo: one two"
    assert finish_of(chunks) == "stop"
    assert {c.model for c in chunks} == {"m"}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17
    assert headers["x-gateway-provider"] == "claude"
    sent = fake_anthropic.requests[0]
    assert sent.body["stream"] is True
    assert "stream_options" not in sent.body
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize("stream", [False, True])
async def test_multi_turn_tools_images_and_parameters_are_translated(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    request = orjson.loads((FIXTURES / "tool_turns.openai.json").read_bytes())
    expected = orjson.loads((FIXTURES / "tool_turns.anthropic.json").read_bytes())
    if not stream:
        del request["stream"], request["stream_options"], expected["stream"]
    gw = await start(gateway_factory, fake_anthropic)
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(**(request | {"model": "m"}))
        if stream:
            text = text_of([c async for c in raw.parse()])
        else:
            text = raw.parse().choices[0].message.content
    # The fake accepted it: tool_result blocks answer the tool_use ids, first in their turn.
    assert text == "echo: Which is warmer?"
    assert fake_anthropic.requests[0].body == expected
    dropped = raw.headers["x-gateway-dropped-params"].split(",")
    assert sorted(dropped) == ["presence_penalty", "response_format", "seed", "top_p"]


async def test_images_from_data_and_http_urls(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic)
    parts: Any = [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]
    async with gw.openai() as client:
        result = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": parts}]
        )
    assert result.choices[0].message.content == "echo: compare"
    assert fake_anthropic.requests[0].body["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
    ]


async def test_parallel_tool_calls_stream_rebuilds_the_plain_response(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    counts = usage(30, 40)
    fake_anthropic.enqueue(
        json_reply(message(TOOL_BLOCKS, stop_reason="tool_use", counts=counts)),
        sse_reply(
            fake_anthropic, stream_events(TOOL_BLOCKS, stop_reason="tool_use", counts=counts)
        ),
    )
    gw = await start(gateway_factory, fake_anthropic)
    ask: Any = {"model": "m", "messages": HELLO, "tools": TOOLS}
    async with gw.openai() as client:
        plain = await client.chat.completions.create(**ask)
        async with client.chat.completions.stream(**ask) as stream:
            async for _ in stream:
                pass
            streamed = await stream.get_final_completion()

    def calls(completion: Any) -> list[tuple[str, str, Any]]:
        tool_calls = completion.choices[0].message.tool_calls
        return [(c.id, c.function.name, orjson.loads(c.function.arguments)) for c in tool_calls]

    assert calls(plain) == [
        ("toolu_01Paris", "get_weather", {"city": "Paris", "unit": "c"}),
        ("toolu_01Oslo", "get_weather", {"city": "Oslo"}),
    ]
    assert calls(streamed) == calls(plain)
    for completion in (plain, streamed):
        assert completion.choices[0].message.content == "Checking both."
        assert completion.choices[0].finish_reason == "tool_calls"
    assert fake_anthropic.requests[1].body["tools"] == [
        {"name": "get_weather", "input_schema": TOOLS[0]["function"]["parameters"]}
    ]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
    ],
)
async def test_finish_reasons(
    gateway_factory: GatewayFactory,
    fake_anthropic: FakeAnthropic,
    stop_reason: str,
    finish: str,
    stream: bool,
) -> None:
    blocks = [text_block("partial answer")]
    if stream:
        fake_anthropic.enqueue(
            sse_reply(fake_anthropic, stream_events(blocks, stop_reason=stop_reason))
        )
    else:
        fake_anthropic.enqueue(json_reply(message(blocks, stop_reason=stop_reason)))
    gw = await start(gateway_factory, fake_anthropic)
    if stream:
        chunks, _ = await collect(gw, stop=["###"])
        got = finish_of(chunks)
    else:
        async with gw.openai() as client:
            result = await client.chat.completions.create(model="m", messages=HELLO, stop=["###"])
        got = result.choices[0].finish_reason
    assert got == finish
    assert fake_anthropic.requests[0].body["stop_sequences"] == ["###"]


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_counts_cached_prompt_tokens(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    counts = usage(10, 4, cache_read=100, cache_creation=20)
    blocks = [text_block("ok")]
    if stream:
        fake_anthropic.enqueue(sse_reply(fake_anthropic, stream_events(blocks, counts=counts)))
    else:
        fake_anthropic.enqueue(json_reply(message(blocks, counts=counts)))
    gw = await start(gateway_factory, fake_anthropic)
    if stream:
        chunks, _ = await collect(gw, stream_options={"include_usage": True})
        result_usage = chunks[-1].usage
    else:
        async with gw.openai() as client:
            result_usage = (await client.chat.completions.create(model="m", messages=HELLO)).usage
    assert result_usage is not None
    assert (result_usage.prompt_tokens, result_usage.completion_tokens) == (130, 4)
    assert result_usage.total_tokens == 134
    details = result_usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 100
    assert (details.model_extra or {})["cache_creation_tokens"] == 20


# --- errors and fallback --------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_400_is_returned_with_the_upstream_message(
    gateway_factory: GatewayFactory,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    stream: bool,
) -> None:
    # The fake refuses it as the real API does, in its words.
    text = "max_tokens: 999999 > 64000, which is the maximum allowed number of output tokens"
    gw = await start(gateway_factory, fake_anthropic, fake_openai)
    async with gw.openai() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="m", messages=HELLO, max_tokens=999999, stream=stream
            )
    assert text in caught.value.message
    assert fake_anthropic.requests[0].body["max_tokens"] == 999999
    assert fake_openai.requests == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "type_", "calls"),
    [(401, "authentication_error", 1), (529, "overloaded_error", 2)],
)
async def test_route_and_overload_failures_fall_back_to_the_next_route(
    gateway_factory: GatewayFactory,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    status: int,
    type_: str,
    calls: int,
    stream: bool,
) -> None:
    # A 401 moves on at once; a 529 is retried once on the same route, then moves on.
    fake_anthropic.enqueue(*[json_reply(error_body(type_, "nope"), status=status)] * 2)
    gw = await start(gateway_factory, fake_anthropic, fake_openai, attempts=1)
    if stream:
        chunks, headers = await collect(gw)
        text = text_of(chunks)
    else:
        async with gw.openai() as client:
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
        text, headers = raw.parse().choices[0].message.content or "", raw.headers
    assert text.strip() == "echo: hello"
    assert headers["x-gateway-provider"] == "backup"
    assert headers["x-gateway-attempts"] == str(calls + 1)
    assert len(fake_anthropic.requests) == calls
    assert fake_openai.requests[0].body["model"] == "gpt-backup"


async def test_overloaded_error_event_before_content_falls_back(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    events = [*stream_events([text_block("never sent")])[:2], error_event()]
    fake_anthropic.enqueue(sse_reply(fake_anthropic, events))
    gw = await start(gateway_factory, fake_anthropic, fake_openai, attempts=0)
    chunks, headers = await collect(gw)
    assert text_of(chunks) == "echo: hello "
    assert headers["x-gateway-provider"] == "backup"
    assert fake_anthropic.streams[0].finished


async def test_error_event_after_content_ends_the_stream_with_an_error(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    events = stream_events([text_block("half an answer")])
    cut = next(i for i, e in enumerate(events) if e[0] == "content_block_stop")  # type: ignore[index]
    fake_anthropic.enqueue(sse_reply(fake_anthropic, [*events[:cut], error_event()]))
    gw = await start(gateway_factory, fake_anthropic, fake_openai, attempts=0)
    received: list[Any] = []
    async with gw.openai() as client:
        stream: Any = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                received.append(chunk)
    assert text_of(received) == "half an answer"
    assert "overloaded_error" in caught.value.message
    assert fake_openai.requests == []


async def test_n_above_one_is_refused_before_any_upstream_call(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic
) -> None:
    gw = await start(gateway_factory, fake_anthropic)
    async with gw.openai() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="m", messages=HELLO, n=2)
    assert caught.value.param == "n"
    assert fake_anthropic.requests == []


AUTH = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
GOOD = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
ORPHAN_RESULT = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]
UNANSWERED_TOOL_USE = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
    {"role": "user", "content": "next"},
]
EMPTY_TEXT = [{"role": "user", "content": [{"type": "text", "text": ""}]}]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (AUTH, GOOD, 200),
        ({"anthropic-version": "2023-06-01"}, GOOD, 401),
        ({"x-api-key": "k"}, GOOD, 400),
        (AUTH, GOOD | {"presence_penalty": 1}, 400),
        (AUTH, {"model": "c", "messages": GOOD["messages"]}, 400),
        (AUTH, GOOD | {"messages": [{"role": "system", "content": "x"}]}, 400),
        (AUTH, GOOD | {"messages": ORPHAN_RESULT}, 400),
        (AUTH, GOOD | {"messages": UNANSWERED_TOOL_USE}, 400),
        (AUTH, GOOD | {"messages": EMPTY_TEXT}, 400),
        (AUTH, GOOD | {"tool_choice": {"type": "required"}}, 400),
    ],
)
async def test_the_fake_refuses_what_the_real_api_refuses(
    fake_anthropic: FakeAnthropic, headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake_anthropic.url}/v1/messages", json=body, headers=headers
        )
    assert response.status_code == status
    if status != 200:
        assert response.json()["type"] == "error"
