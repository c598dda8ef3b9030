"""POST /v1/responses end to end: the openai SDK -> the gateway -> each kind of route.

The OpenAI route is called natively (the client's Responses body, with the gateway's
conversation state spelled out and `store: false`); the Claude and Gemini routes through
their adapters, the answer rendered as a Response. The fakes refuse what the real APIs
refuse, so a wrong translation fails here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.dialects.conftest import ENV, ROUTE_KINDS, routes_toml, script_tool_call
from tests.support.configs import alias
from tests.support.fake_anthropic import stream_events as claude_stream
from tests.support.fake_anthropic import text_block
from tests.support.fake_gemini import response as gemini_response
from tests.support.fake_openai import rate_limit_error
from tests.support.fake_responses import message_item, response_events, response_object
from tests.support.fake_upstream import Reset, json_reply, sse_reply
from tests.support.gateway import KEY, RunningGateway
from tests.test_accounting import wait_rows

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_create_on_every_kind_of_route(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    async with gw.openai() as client:
        raw = await client.responses.with_raw_response.create(
            model=model, instructions="Be brief.", input="hello there", max_output_tokens=200
        )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.model == model
    assert response.id.startswith("resp_")
    assert response.output_text.startswith("echo: hello there")
    assert response.usage is not None and response.usage.input_tokens > 0
    assert raw.headers["x-gateway-cost-usd"] != "unknown"
    sent = fakes[model].requests[-1]
    if model == "gpt":  # native: the Responses API itself, nothing kept at OpenAI
        assert sent.path == "/v1/responses"
        assert sent.body["instructions"] == "Be brief." and sent.body["store"] is False
        assert "reasoning.encrypted_content" in sent.body["include"]
        assert sent.body["model"] == "gpt-4.1-mini"
        assert response.id not in str(sent.body)
    elif model == "claude":
        assert sent.body["system"] == "Be brief." or sent.body["system"][0]["text"] == "Be brief."


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_stream_helper_on_every_kind_of_route(gw: RunningGateway, model: str) -> None:
    async with (
        gw.openai() as client,
        client.responses.stream(model=model, input="stream me please") as stream,
    ):
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas).startswith("echo: stream me please")
    assert final.output_text == "".join(deltas)
    assert final.status == "completed" and final.model == model
    assert final.usage is not None and final.usage.output_tokens > 0


async def test_raw_stream_is_the_documented_sequence(gw: RunningGateway) -> None:
    async with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/responses",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": "claude", "input": "a b", "stream": True},
        ) as response,
    ):
        body = (await response.aread()).decode()
    events = [orjson.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert events[0]["response"]["output"] == []
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert kinds.index("response.content_part.added") < kinds.index("response.output_text.delta")
    assert "[DONE]" not in body


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_tool_loop_with_function_call_output(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    script_tool_call(model, fakes[model])
    async with gw.openai() as client:
        first = await client.responses.create(
            model=model, input="What is the weather in Paris?", tools=[WEATHER]
        )
        call = next(item for item in first.output if item.type == "function_call")
        assert call.name == "get_weather"
        assert orjson.loads(call.arguments) == {"city": "Paris"}
        history: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
        history += [item.model_dump(exclude_unset=True) for item in first.output]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C"})
        second = await client.responses.create(model=model, input=history, tools=[WEATHER])
    assert second.status == "completed" and second.output_text
    assert "18C" in str(fakes[model].requests[-1].body)  # the tool's output reached the model


@pytest.mark.parametrize("model", ROUTE_KINDS)
async def test_previous_response_id_continues_on_any_route(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    async with gw.openai() as client:
        first = await client.responses.create(model=model, input="my name is Ada")
        second = await client.responses.create(
            model=model, input="what is my name?", previous_response_id=first.id
        )
        assert second.previous_response_id == first.id
        got = await client.responses.retrieve(second.id)
        items = await client.responses.input_items.list(second.id)
    assert got.output_text == second.output_text
    assert [i.type for i in items.data] == ["message"]
    sent = str(fakes[model].requests[-1].body)
    assert "my name is Ada" in sent and "what is my name?" in sent  # the history went along
    assert "echo: my name is Ada" in sent


async def test_previous_response_id_crosses_providers(
    gw: RunningGateway, fakes: dict[str, Any]
) -> None:
    async with gw.openai() as client:
        first = await client.responses.create(model="claude", input="remember 42")
        second = await client.responses.create(
            model="gpt", input="what number?", previous_response_id=first.id
        )
    assert second.status == "completed"
    sent = fakes["gpt"].requests[-1].body
    assert [i.get("role") for i in sent["input"]] == ["user", "assistant", "user"]


OTHER_KEY = "llmg_another_callers_key_0123456789"


async def test_another_owners_response_does_not_exist(
    gateway_factory: GatewayFactory, fakes: dict[str, Any]
) -> None:
    digest = hashlib.sha256(OTHER_KEY.encode()).hexdigest()
    other = f'[[keys]]\nname = "other"\nkey_sha256 = "{digest}"\n'
    gw = await gateway_factory(routes_toml(fakes, other), env=ENV)
    async with gw.openai() as client:
        first = await client.responses.create(model="claude", input="secret")
    async with gw.openai(key=OTHER_KEY) as client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.input_items.list(first.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(
                model="claude", input="what was it?", previous_response_id=first.id
            )
        with pytest.raises(openai.NotFoundError):
            await client.responses.delete(first.id)
    assert caught.value.code == "previous_response_not_found"
    assert len(fakes["claude"].requests) == 1  # nothing of theirs was sent anywhere
    async with gw.openai() as client:
        assert (await client.responses.retrieve(first.id)).id == first.id
        await client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)


async def test_store_false_keeps_nothing(gw: RunningGateway) -> None:
    async with gw.openai() as client:
        response = await client.responses.create(model="claude", input="x", store=False)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)


async def test_structured_output_with_text_format(gw: RunningGateway) -> None:
    schema = {
        "type": "object",
        "properties": {"echo": {"type": "string"}},
        "required": ["echo"],
        "additionalProperties": False,
    }
    text_format: Any = {
        "format": {"type": "json_schema", "name": "e", "schema": schema, "strict": True}
    }
    for model in ROUTE_KINDS[:2]:
        async with gw.openai() as client:
            response = await client.responses.create(model=model, input="hi", text=text_format)
        assert "echo" in orjson.loads(response.output_text), model


async def test_hosted_tools_only_on_openai_routes(
    gw: RunningGateway, fakes: dict[str, Any]
) -> None:
    search: Any = {"type": "web_search"}
    async with gw.openai() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="claude", input="search", tools=[search])
    assert "only OpenAI routes" in caught.value.message
    assert not fakes["claude"].requests


async def test_fallback_rate_limit_and_log_rows(gw: RunningGateway, fakes: dict[str, Any]) -> None:
    fakes["gpt"].enqueue(json_reply(rate_limit_error(), status=429, headers={"retry-after": "3"}))
    async with gw.openai() as client:
        raw = await client.responses.with_raw_response.create(model="gpt-then-claude", input="hi")
        assert raw.headers["x-gateway-provider"] == "anthropic"
        fakes["gpt"].enqueue(
            json_reply(rate_limit_error(), status=429, headers={"retry-after": "3"})
        )
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="gpt", input="hi")
    assert limited.value.response.headers["retry-after"] == "3"
    async with httpx.AsyncClient(base_url=gw.url) as http:
        bad = await http.post(
            "/v1/responses", headers={"Authorization": f"Bearer {KEY}"}, json={"model": "gpt"}
        )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"
    rows = await wait_rows(Path(gw.config.storage.database), 3)
    assert [(r["api"], r["http_status"]) for r in rows] == [
        ("responses", 200),
        ("responses", 429),
        ("responses", 400),
    ]


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_a_stream_that_fails_midway_ends_with_response_failed(
    gw: RunningGateway, fakes: dict[str, Any], model: str
) -> None:
    if model == "gpt":  # native: OpenAI's own events, then the connection drops
        response = response_object([message_item("one two three four")])
        events = response_events(response)[:6]
        fakes["gpt"].enqueue(sse_reply(fakes["gpt"], [*events, Reset()]))
    else:  # translated
        events = claude_stream([text_block("one two three four")])[:4]
        fakes["claude"].enqueue(sse_reply(fakes["claude"], [*events, Reset()]))
    async with (
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/responses",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": model, "input": "go", "stream": True},
        ) as streamed,
    ):
        body = (await streamed.aread()).decode()
    events_seen = [
        orjson.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")
    ]
    assert any(e["type"] == "response.output_text.delta" for e in events_seen)
    last = events_seen[-1]
    assert last["type"] == "response.failed"
    assert (
        last["response"]["status"] == "failed"
        and last["response"]["error"]["code"] == "server_error"
    )
    assert last["sequence_number"] == events_seen[-2]["sequence_number"] + 1
    async with gw.openai() as client:  # a failed response is not kept
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(last["response"]["id"])


async def test_reasoning_from_another_provider_does_not_break_openai(
    gw: RunningGateway, fakes: dict[str, Any]
) -> None:
    """Gemini's thoughts become a reasoning item with no encrypted content; OpenAI under
    store: false answers "not found" to any reasoning item it cannot decrypt."""
    thought = gemini_response([{"text": "Let me think.", "thought": True}, {"text": "Hi."}])
    fakes["gem"].enqueue(json_reply(thought))
    async with gw.openai() as client:
        first = await client.responses.create(model="gem", input="hello")
        assert [item.type for item in first.output] == ["reasoning", "message"]
        second = await client.responses.create(
            model="gpt", input="and now?", previous_response_id=first.id
        )
        replayed = [item.model_dump(exclude_unset=True) for item in first.output]
        third = await client.responses.create(
            model="gpt", input=[{"role": "user", "content": "hello"}, *replayed]
        )
    assert second.status == third.status == "completed"
    sent = fakes["gpt"].requests[-1].body["input"]
    assert [item.get("type", "message") for item in sent] == ["message", "message"]


async def test_cached_answers_never_cross_native_only_features(
    gateway_factory: GatewayFactory, fakes: dict[str, Any]
) -> None:
    cache = "[cache]\nenabled = true\n"
    gw = await gateway_factory(
        routes_toml(
            fakes,
            alias("gem-then-gpt", ("google", "gemini-2.5-flash"), ("openai", "gpt-4.1-mini")),
            cache,
        ),
        env=ENV,
    )
    body: Any = {"model": "gem-then-gpt", "input": "news today?", "temperature": 0}
    async with gw.http() as http:
        auth = {"Authorization": f"Bearer {KEY}"}
        first = await http.post("/v1/responses", json=body, headers=auth)
        again = await http.post("/v1/responses", json=body, headers=auth)
        searching = await http.post(
            "/v1/responses", json={**body, "tools": [{"type": "web_search"}]}, headers=auth
        )
    assert first.headers["x-cache"] == "MISS" and again.headers["x-cache"] == "HIT"
    assert again.json()["id"] != first.json()["id"]  # a hit is a response of its own
    assert searching.headers["x-cache"] == "MISS"
    assert searching.headers["x-gateway-provider"] == "openai"
