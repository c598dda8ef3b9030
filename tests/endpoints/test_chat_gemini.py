"""Gemini through the gateway with the official openai SDK, both plain and streaming."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, gateway_toml
from tests.support.fake_gemini import FakeGemini, call, error, response, usage
from tests.support.fake_upstream import json_reply, sse_reply
from tests.support.gateway import RunningGateway

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "default": "Paris"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    upstream = await FakeGemini().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def gw(gateway_factory: GatewayFactory, fake: FakeGemini) -> RunningGateway:
    toml = gateway_toml(
        f'[providers.gem]\ntype = "gemini"\nbase_url = "{fake.url}/v1beta"\n'
        'api_key_env = "GEMINI_KEY"\n',
        MOCK,
        '[[models]]\nalias = "g"\nroutes = [{ provider = "gem", model = "gemini-2.5-flash" },'
        ' { provider = "demo", model = "echo" }]\n',
        '[[models]]\nalias = "emb"\nroutes = [{ provider = "gem", model = "gemini-embedding-001" }]\n',
        attempts=0,
    )
    return await gateway_factory(toml, env={"GEMINI_KEY": "gk-secret"})


async def test_text_with_system_prompt_plain_and_streaming(
    gw: RunningGateway, fake: FakeGemini
) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="g", messages=messages, temperature=0.2, max_tokens=50, stop="END"
        )
        plain = raw.parse()
        stream = await client.chat.completions.create(
            model="g", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
    assert plain.choices[0].message.content == "echo: hi there"
    assert plain.choices[0].finish_reason == "stop" and plain.model == "g"
    assert plain.usage is not None and plain.usage.prompt_tokens == 6
    assert raw.headers["x-gateway-provider"] == "gem"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hi there"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "gk-secret" and "key" not in sent.query
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["END"]},
    }
    streamed = fake.requests[1]
    assert streamed.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert streamed.query == {"alt": "sse"}


async def test_tool_calls_round_trip_and_stream_rebuilds_them(
    gw: RunningGateway, fake: FakeGemini
) -> None:
    parts = [call("weather", {"city": "Paris"}), call("weather", {"city": "Oslo", "unit": "c"})]
    fake.enqueue(json_reply(response(parts, usage=usage())))
    fake.enqueue(
        sse_reply(fake, [response(parts[:1], finish=None), response(parts[1:], usage=usage())])
    )
    question = [{"role": "user", "content": "weather?"}]
    async with gw.openai() as client:
        plain = await client.chat.completions.create(
            model="g", messages=question, tools=[WEATHER], tool_choice="required"
        )
        # The SDK's stream helper only takes strict tools; `strict` is not sent to Gemini.
        strict = {**WEATHER, "function": {**WEATHER["function"], "strict": True}}
        async with client.beta.chat.completions.stream(
            model="g", messages=question, tools=[strict]
        ) as stream:
            final = await stream.get_final_completion()
    calls = plain.choices[0].message.tool_calls
    assert plain.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("weather", '{"city":"Paris"}'),
        ("weather", '{"city":"Oslo","unit":"c"}'),
    ]
    streamed = final.choices[0].message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        (c.function.name, c.function.arguments) for c in calls
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    sent = fake.requests[0].body
    declaration = sent["tools"][0]["functionDeclarations"][0]
    # Gemini 2.5 takes full JSON Schema: nothing is lost in translation.
    assert declaration["parametersJsonSchema"] == WEATHER["function"]["parameters"]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    # The results go back as functionResponse parts named after their calls.
    history = [
        *question,
        {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "cold"},
    ]
    async with gw.openai() as client:
        await client.chat.completions.create(
            model="g",
            messages=history,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "weather"}},
        )
    sent = fake.requests[-1].body
    assert sent["contents"][1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "weather", "args": {"city": "Oslo", "unit": "c"}}},
        ],
    }
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "weather", "response": {"content": "cold"}}},
        ],
    }
    assert sent["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["weather"],
    }


async def test_images_become_inline_and_file_data(gw: RunningGateway, fake: FakeGemini) -> None:
    content: list[Any] = [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.webp"}},
    ]
    async with gw.openai() as client:
        await client.chat.completions.create(
            model="g", messages=[{"role": "user", "content": content}]
        )
    assert fake.requests[0].body["contents"][0]["parts"] == [
        {"text": "compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.test/cat.webp"}},
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
    ],
)
async def test_finish_reasons_plain_and_streaming(
    gw: RunningGateway, fake: FakeGemini, reason: str, expected: str
) -> None:
    fake.enqueue(json_reply(response([{"text": "x"}], finish=reason, usage=usage())))
    fake.enqueue(sse_reply(fake, [response([{"text": "x"}], finish=reason, usage=usage())]))
    async with gw.openai() as client:
        plain = await client.chat.completions.create(
            model="g", messages=[{"role": "user", "content": "q"}]
        )
        stream = await client.chat.completions.create(
            model="g", messages=[{"role": "user", "content": "q"}], stream=True
        )
        chunks = [c async for c in stream]
    assert plain.choices[0].finish_reason == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == expected


async def test_n_candidates_and_a_blocked_prompt(gw: RunningGateway, fake: FakeGemini) -> None:
    two = response([{"text": "a"}], usage=usage())
    two["candidates"].append(
        {"content": {"role": "model", "parts": [{"text": "b"}]}, "finishReason": "STOP", "index": 1}
    )
    fake.enqueue(json_reply(two))
    fake.enqueue(
        json_reply({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage(3, 0)})
    )
    async with gw.openai() as client:
        both = await client.chat.completions.create(
            model="g", n=2, messages=[{"role": "user", "content": "q"}]
        )
        blocked = await client.chat.completions.create(
            model="g", messages=[{"role": "user", "content": "q"}]
        )
    assert [c.message.content for c in both.choices] == ["a", "b"]
    assert fake.requests[0].body["generationConfig"] == {"candidateCount": 2}
    assert blocked.choices[0].finish_reason == "content_filter"


async def test_errors_map_and_route_faults_fall_back(gw: RunningGateway, fake: FakeGemini) -> None:
    fake.enqueue(json_reply(error(400, "Invalid value at temperature", "INVALID_ARGUMENT"), 400))
    async with gw.openai() as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="g", messages=[{"role": "user", "content": "q"}]
            )
        assert "Invalid value at temperature" in bad.value.message
        for status, code in (
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (429, "RESOURCE_EXHAUSTED"),
            (503, "UNAVAILABLE"),
        ):
            fake.enqueue(json_reply(error(status, "nope", code), status))
            raw = await client.chat.completions.with_raw_response.create(
                model="g", messages=[{"role": "user", "content": "q"}]
            )
            assert raw.headers["x-gateway-provider"] == "demo", status
        fake.enqueue(json_reply(error(503, "overloaded", "UNAVAILABLE"), 503))
        stream = await client.chat.completions.create(
            model="g", messages=[{"role": "user", "content": "q"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: q"


async def test_unsupported_parameters_are_named_in_a_header(gw: RunningGateway) -> None:
    async with gw.openai() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="g",
            messages=[{"role": "user", "content": "q"}],
            logprobs=True,
            logit_bias={"1": 2},
            user="u1",
        )
    assert raw.headers["x-gateway-dropped-params"] == "logit_bias,logprobs,user"


async def test_embeddings_through_batch_embed_contents(
    gw: RunningGateway, fake: FakeGemini
) -> None:
    async with gw.openai() as client:
        floats = await client.embeddings.create(
            model="emb", input=["a", "bb"], encoding_format="float", dimensions=2
        )
        encoded = await client.embeddings.with_raw_response.create(model="emb", input="x")
    assert [d.embedding for d in floats.data] == [[0.0, 0.25], [1.0, 0.25]]
    assert floats.model == "emb" and floats.usage.prompt_tokens == 2
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.body["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "outputDimensionality": 2,
        "content": {"parts": [{"text": "bb"}]},
    }
    vector = encoded.parse().data[0].embedding
    assert vector == [0.0, 0.25]
    raw_b64 = encoded.http_response.json()["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(raw_b64)) == (0.0, 0.25)
