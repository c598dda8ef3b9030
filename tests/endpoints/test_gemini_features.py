"""Gemini through the OpenAI shape, against a fake as strict as the real API on each point:
penalties, full JSON Schema, thinking, thought signatures, audio and PDF, finish reasons,
and streamed parallel tool calls."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import openai
import orjson
import pydantic
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_gemini import FakeGemini, call, response, usage
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_upstream import json_reply, sse_reply
from tests.support.gateway import KEY, RunningGateway

HELLO = [{"role": "user", "content": "hello"}]
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    upstream = await FakeGemini().start()
    yield upstream
    await upstream.stop()


async def start(
    gateway_factory: GatewayFactory, fake: FakeGemini, model: str, backup: FakeOpenAI | None = None
) -> RunningGateway:
    routes = [("gem", model)] + ([("backup", "gpt-4o-mini")] if backup else [])
    sections = [provider("gem", fake.url, kind="gemini", api_key_env="G_KEY")]
    if backup:
        sections.append(provider("backup", backup.url, kind="openai", api_key_env="G_KEY"))
    return await gateway_factory(
        gateway_toml(*sections, alias("m", *routes), attempts=0), env={"G_KEY": "gk"}
    )


async def test_penalties_are_dropped_on_models_that_refuse_them(
    gateway_factory: GatewayFactory, fake: FakeGemini
) -> None:
    gw = await start(gateway_factory, fake, "gemini-2.5-flash")
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=HELLO, presence_penalty=0.5, frequency_penalty=0.0
        )
    assert raw.headers["x-gateway-dropped-params"] == "presence_penalty"
    assert "presencePenalty" not in fake.requests[0].body.get("generationConfig", {})


class City(pydantic.BaseModel):
    name: str
    country: str | None = None


class Trip(pydantic.BaseModel):
    cities: list[City]
    days: int = 3


async def test_nested_pydantic_models_keep_their_whole_json_schema(
    gateway_factory: GatewayFactory, fake: FakeGemini
) -> None:
    answer = {"cities": [{"name": "Paris", "country": "FR"}], "days": 2}
    fake.enqueue(json_reply(response([{"text": orjson.dumps(answer).decode()}], usage=usage())))
    gw = await start(gateway_factory, fake, "gemini-2.5-flash")
    async with gw.openai() as client:
        parsed = await client.chat.completions.parse(
            model="m", messages=HELLO, response_format=Trip
        )
    assert parsed.choices[0].message.parsed == Trip.model_validate(answer)
    schema = fake.requests[0].body["generationConfig"]["responseJsonSchema"]
    assert "$defs" in schema and "$ref" in orjson.dumps(schema).decode()  # nothing was lost


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128}),
        ("gemini-3-pro-preview", "medium", {"thinkingLevel": "HIGH"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "MINIMAL"}),
    ],
)
async def test_reasoning_effort_becomes_thinking_config_and_reasoning_tokens_are_reported(
    gateway_factory: GatewayFactory, fake: FakeGemini, model: str, effort: str, expected: object
) -> None:
    thought = {"thought": True, "text": "let me see"}
    fake.enqueue(
        json_reply(
            response([thought, {"text": "hi"}], usage={**usage(5, 2), "thoughtsTokenCount": 7})
        )
    )
    gw = await start(gateway_factory, fake, model)
    async with gw.openai() as client:
        reply = await client.chat.completions.create(
            model="m", messages=HELLO, reasoning_effort=effort
        )  # type: ignore[arg-type]
    assert fake.requests[0].body["generationConfig"]["thinkingConfig"] == expected
    assert reply.choices[0].message.content == "hi"
    assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == "let me see"
    assert reply.usage is not None and reply.usage.completion_tokens == 9
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 7


@pytest.mark.parametrize("stream", [False, True])
async def test_thought_signatures_survive_a_gemini_3_tool_loop(
    gateway_factory: GatewayFactory, fake: FakeGemini, stream: bool
) -> None:
    signed = {**call("weather", {"city": "Paris"}), "thoughtSignature": "c2lnbmF0dXJl"}
    parts = [signed, call("weather", {"city": "Oslo"})]  # only the first of parallel calls
    fake.signatures.add("c2lnbmF0dXJl")
    if stream:
        fake.enqueue(sse_reply(fake, [response(parts, usage=usage())]))
    else:
        fake.enqueue(json_reply(response(parts, usage=usage())))
    gw = await start(gateway_factory, fake, "gemini-3-pro-preview")
    async with gw.openai() as client:
        if stream:
            strict = {**WEATHER, "function": {**WEATHER["function"], "strict": True}}
            async with client.chat.completions.stream(
                model="m", messages=HELLO, tools=[strict]
            ) as events:
                first = await events.get_final_completion()
        else:
            first = await client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER])
        message = first.choices[0].message
        calls = message.tool_calls or []
        assert (calls[0].model_extra or {})["extra_content"] == {
            "google": {"thought_signature": "c2lnbmF0dXJl"}
        }
        # The SDK's own message object goes back into the history as the client got it.
        history = [
            *HELLO,
            message.model_dump(exclude_none=True, exclude={"parsed"}),
            *({"role": "tool", "tool_call_id": c.id, "content": "sunny"} for c in calls),
        ]
        await client.chat.completions.create(model="m", messages=history, tools=[WEATHER])
    turn = fake.requests[1].body["contents"][1]
    assert turn["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"


async def test_calls_made_elsewhere_are_marked_for_gemini_3_and_unsigned_ones_are_refused(
    gateway_factory: GatewayFactory, fake: FakeGemini
) -> None:
    gw = await start(gateway_factory, fake, "gemini-3-pro-preview")
    foreign = {
        "id": "call_x",
        "type": "function",
        "function": {"name": "weather", "arguments": "{}"},
    }
    history = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [foreign]},
        {"role": "tool", "tool_call_id": "call_x", "content": "sunny"},
    ]
    async with gw.openai() as client:
        await client.chat.completions.create(model="m", messages=history, tools=[WEATHER])
    part = fake.requests[0].body["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == "skip_thought_signature_validator"
    # And the fake is as strict as the API: an unsigned call is refused.
    bare = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [call("weather", {})]},
        ]
    }
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            f"{fake.url}/v1beta/models/gemini-3-pro-preview:generateContent",
            headers={"x-goog-api-key": "gk"},
            json=bare,
        )
    assert refused.status_code == 400 and "thought_signature" in refused.text


async def test_audio_and_pdf_parts_go_inline_and_a_file_id_is_refused_by_name(
    gateway_factory: GatewayFactory, fake: FakeGemini
) -> None:
    gw = await start(gateway_factory, fake, "gemini-2.5-flash")
    pdf = base64.b64encode(b"%PDF-1.4 tiny").decode()
    content = [
        {"type": "text", "text": "what is said here?"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{pdf}"},
        },
    ]
    async with gw.openai() as client:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": content}]
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="m",
                messages=[
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}
                ],
            )
    parts = fake.requests[0].body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
    assert parts[2] == {"inlineData": {"mimeType": "application/pdf", "data": pdf}}
    assert caught.value.body["param"] == "messages[0].content[0]"  # type: ignore[index]


async def test_a_malformed_function_call_falls_back_instead_of_an_empty_stop(
    gateway_factory: GatewayFactory, fake: FakeGemini, fake_openai: FakeOpenAI
) -> None:
    broken = response([], finish="MALFORMED_FUNCTION_CALL", usage=usage())
    broken["candidates"][0]["finishMessage"] = "Malformed function call: weather(city=)"
    fake.enqueue(json_reply(broken))
    gw = await start(gateway_factory, fake, "gemini-2.5-flash", backup=fake_openai)
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="m", messages=HELLO, tools=[WEATHER]
        )
    assert raw.headers["x-gateway-provider"] == "backup"
    assert raw.parse().choices[0].message.content == "echo: hello"


@pytest.mark.parametrize(
    ("reason", "finish"), [("MAX_TOKENS", "length"), ("SAFETY", "content_filter")]
)
async def test_a_tool_call_does_not_hide_a_truncation_or_a_filter(
    gateway_factory: GatewayFactory, fake: FakeGemini, reason: str, finish: str
) -> None:
    fake.enqueue(json_reply(response([call("weather", {})], finish=reason, usage=usage())))
    gw = await start(gateway_factory, fake, "gemini-2.5-flash")
    async with gw.openai() as client:
        reply = await client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER])
    assert reply.choices[0].finish_reason == finish


async def test_parallel_calls_stream_one_per_chunk(
    gateway_factory: GatewayFactory, fake: FakeGemini
) -> None:
    parts = [call("weather", {"city": "Paris"}), call("weather", {"city": "Oslo"})]
    fake.enqueue(sse_reply(fake, [response(parts, usage=usage())]))
    gw = await start(gateway_factory, fake, "gemini-2.5-flash")
    async with gw.http() as http:
        body = {"model": "m", "messages": HELLO, "tools": [WEATHER], "stream": True}
        raw = await http.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
    chunks = [
        orjson.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: {")
    ]
    per_chunk = [
        len(c["choices"][0]["delta"].get("tool_calls") or ()) for c in chunks if c["choices"]
    ]
    assert max(per_chunk) == 1 and sum(per_chunk) == 2
