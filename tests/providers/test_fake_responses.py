"""The fake Responses API (tests/support/fake_responses.py) against the official openai SDK.

The SDK talks straight to the fake here, with no gateway in between. Its strict response
validation is on, so a missing or mistyped field fails these tests. They are what proves
the fake answers what the real API answers, and refuses what it refuses, before gateway
tests rely on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_responses import (
    ResponsesState,
    function_call_item,
    message_item,
    response_events,
    response_object,
    responses_problem,
)
from tests.support.fake_upstream import json_reply, sse_reply

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
LONG = " ".join(f"w{i}" for i in range(30))


@pytest.fixture
async def client(fake_openai: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake_openai.url + "/v1",
        api_key="k",
        max_retries=0,
        _strict_response_validation=True,
    ) as sdk:
        yield sdk


async def test_create_answers_a_full_response(
    client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    response = await client.responses.create(
        model="gpt-4o", input="hello there", instructions="Be brief."
    )
    assert response.output_text == "echo: hello there"
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.model == "gpt-4o"
    assert response.instructions == "Be brief." and response.tools == []
    [item] = response.output
    assert item.type == "message" and item.id.startswith("msg_") and item.role == "assistant"
    assert item.status == "completed"
    usage = response.usage
    assert usage is not None and usage.output_tokens == 3
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    sent = fake_openai.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/responses")


async def test_create_echoes_the_last_user_message_of_a_list(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "first"},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_old",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "earlier", "annotations": [], "logprobs": []}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "second"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"},
                ],
            },
        ],
    )
    assert response.output_text == "echo: second"


async def test_stream_follows_the_documented_event_sequence(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(model="gpt-4o", input="one two three") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    assert final.output_text == "echo: one two three"
    assert final.status == "completed" and final.usage is not None
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "echo: one two three"
    assert all(e.logprobs == [] for e in events if e.type == "response.output_text.delta")
    created = events[0]
    assert created.type == "response.created"
    assert created.response.output == [] and created.response.status == "in_progress"


async def test_stream_is_sse_with_event_lines_and_no_done(fake_openai: FakeOpenAI) -> None:
    async with httpx.AsyncClient() as http:
        raw = await http.post(
            fake_openai.url + "/v1/responses",
            json={"model": "gpt-4o", "input": "hi", "stream": True},
        )
    assert raw.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in raw.text.split("\n\n") if f.strip()]
    for frame in frames:
        event, data = frame.split("\n")
        name = event.removeprefix("event: ")
        assert orjson.loads(data.removeprefix("data: "))["type"] == name
    assert "[DONE]" not in raw.text
    assert frames[-1].startswith("event: response.completed")


async def test_tool_loop_with_full_history(client: openai.AsyncOpenAI) -> None:
    asked: Any = {"role": "user", "content": "What's the weather in Paris?"}
    first = await client.responses.create(model="gpt-4o", input=[asked], tools=[WEATHER_TOOL])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "Paris"}
    assert call.id is not None and call.id.startswith("fc_") and call.call_id.startswith("call_")
    assert first.output_text == ""
    # The agents SDK replays items as model_dump(exclude_unset=True) (items.py).
    history = [
        asked,
        call.model_dump(exclude_unset=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C sunny"},
    ]
    second = await client.responses.create(model="gpt-4o", input=history, tools=[WEATHER_TOOL])
    assert second.output_text == "echo: 18C sunny"
    assert second.tools[0].type == "function" and second.tools[0].name == "get_weather"


async def test_streamed_tool_call_parses_as_a_strict_tool(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(
        model="gpt-4o", input="weather in Paris please", tools=[WEATHER_TOOL]
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    [call] = final.output
    assert call.type == "function_call" and call.parsed_arguments == {"city": "Paris"}
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.arguments == ""
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) == 2 and all(d.item_id == call.id for d in deltas)
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.name == "get_weather" and done.arguments == call.arguments


async def test_forced_tool_choice_and_none(client: openai.AsyncOpenAI) -> None:
    forced = await client.responses.create(
        model="gpt-4o",
        input="hi",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert forced.output[0].type == "function_call"
    refused = await client.responses.create(
        model="gpt-4o", input="weather?", tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert refused.output_text == "echo: weather?"


async def test_previous_response_id_continues_a_stored_response(
    client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    first = await client.responses.create(
        model="gpt-4o", input="weather in Paris?", tools=[WEATHER_TOOL]
    )
    call = first.output[0]
    assert call.type == "function_call"
    second = await client.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "echo: sunny" and second.previous_response_id == first.id
    third = await client.responses.create(
        model="gpt-4o", previous_response_id=second.id, input="thanks"
    )
    assert third.output_text == "echo: thanks"
    assert third.usage is not None and second.usage is not None
    assert third.usage.input_tokens > second.usage.input_tokens  # the chain is in the prompt

    assert (await client.responses.retrieve(second.id)).output_text == "echo: sunny"
    items = await client.responses.input_items.list(second.id)
    [output] = items.data
    assert output.type == "function_call_output" and output.id.startswith("fco_")
    first_items = await client.responses.input_items.list(first.id, order="asc")
    assert [i.type for i in first_items.data] == ["message"]
    await client.responses.delete(third.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(third.id)
    assert first.id in fake_openai.responses_api.state.responses


async def test_previous_response_id_must_be_stored(client: openai.AsyncOpenAI) -> None:
    unstored = await client.responses.create(model="gpt-4o", input="hi", store=False)
    assert unstored.store is False  # type: ignore[attr-defined]  # API-only field
    for missing in (unstored.id, "resp_never_issued"):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(
                model="gpt-4o", input="again", previous_response_id=missing
            )
        assert caught.value.code == "previous_response_not_found"
        assert caught.value.param == "previous_response_id"
        assert caught.value.body == {
            "message": f"Previous response with id '{missing}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }


async def test_reasoning_items_and_their_replay(client: openai.AsyncOpenAI) -> None:
    asked: Any = {"role": "user", "content": "think"}
    plain = await client.responses.create(
        model="gpt-5-mini", input=[asked], reasoning={"effort": "low"}, store=False
    )
    reasoning, message = plain.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert reasoning.summary == [] and reasoning.encrypted_content is None
    assert plain.usage is not None and plain.usage.output_tokens_details.reasoning_tokens > 0
    assert message.type == "message"

    # Not stored and not encrypted: the API cannot find it again.
    replay = [asked, reasoning.model_dump(exclude_unset=True), message.model_dump()]
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(
            model="gpt-5-mini", input=[*replay, {"role": "user", "content": "more"}], store=False
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"] == (
        f"Item with id '{reasoning.id}' not found. Items are not persisted when `store` is set "
        "to false. Try again with `store` set to true, or remove this item from your input."
    )

    sealed = await client.responses.create(
        model="gpt-5-mini",
        input=[asked],
        reasoning={"effort": "low"},
        store=False,
        include=["reasoning.encrypted_content"],
    )
    item = sealed.output[0]
    assert item.type == "reasoning" and item.encrypted_content
    replay = [asked, item.model_dump(), sealed.output[1].model_dump()]
    again = await client.responses.create(
        model="gpt-5-mini", input=[*replay, {"role": "user", "content": "more"}], store=False
    )
    assert again.output_text == "echo: more"
    forged = {**item.model_dump(), "encrypted_content": "forged"}
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="gpt-5-mini", input=[asked, forged], store=False)

    # A stored reasoning item is found by its id alone.
    stored = await client.responses.create(
        model="gpt-5-mini", input=[asked], reasoning={"effort": "low"}
    )
    kept = stored.output[0].model_dump(exclude_none=True)
    await client.responses.create(
        model="gpt-5-mini", input=[asked, kept, stored.output[1].model_dump()]
    )


async def test_json_schema_format_answers_json(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-4o",
        input="hi",
        text={
            "format": {
                "type": "json_schema",
                "name": "echo",
                "schema": {
                    "type": "object",
                    "properties": {"echo": {"type": "string"}},
                    "required": ["echo"],
                    "additionalProperties": False,
                },
                "strict": True,
            }
        },
    )
    assert orjson.loads(response.output_text) == {"echo": "hi"}


async def test_max_output_tokens_cuts_the_answer_short(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(model="gpt-4o", input=LONG, max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 16
    assert response.output[0].status == "incomplete"
    assert response.usage is not None and response.usage.output_tokens == 16

    events = [
        e
        async for e in await client.responses.create(
            model="gpt-4o", input=LONG, max_output_tokens=16, stream=True
        )
    ]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details is not None


def chat_tools() -> Any:
    return [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


REFUSED: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("no model", {"model": openai.omit}, "Missing required parameter: 'model'.", "model"),
    (
        "chat-shaped tools",
        {"tools": chat_tools()},
        "Missing required parameter: 'tools[0].name'.",
        "tools[0].name",
    ),
    (
        "max_output_tokens below 16",
        {"max_output_tokens": 8},
        "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, "
        "but got 8 instead.",
        "max_output_tokens",
    ),
    (
        "messages",
        {"extra_body": {"messages": [{"role": "user", "content": "hi"}]}},
        "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved to "
        "'input'.",
        None,
    ),
    (
        "response_format",
        {"extra_body": {"response_format": {"type": "json_object"}}},
        "Unsupported parameter: 'response_format'.",
        None,
    ),
    (
        "max_completion_tokens",
        {"extra_body": {"max_completion_tokens": 50}},
        "Unsupported parameter: 'max_completion_tokens'.",
        None,
    ),
    (
        "max_tokens",
        {"extra_body": {"max_tokens": 50}},
        "Unknown parameter: 'max_tokens'.",
        "max_tokens",
    ),
    ("n", {"extra_body": {"n": 2}}, "Unknown parameter: 'n'.", "n"),
    ("stop", {"extra_body": {"stop": ["x"]}}, "Unknown parameter: 'stop'.", "stop"),
    (
        "chat's stream_options",
        {"stream_options": {"include_usage": True}, "extra_body": {"stream": False}},
        "Unknown parameter: 'stream_options.include_usage'.",
        "stream_options.include_usage",
    ),
    (
        "input as an object",
        {"input": {"role": "user"}},
        "Invalid type for 'input': expected one of a string or array of input items",
        "input",
    ),
    (
        "unknown item type",
        {"input": [{"type": "tool_result", "content": "x"}]},
        "Invalid value: 'tool_result'.",
        "input[0].type",
    ),
    (
        "tool role",
        {"input": [{"role": "tool", "content": "x"}]},
        "Invalid value: 'tool'. Supported values are: 'user', 'assistant', 'system', and "
        "'developer'.",
        "input[0].role",
    ),
    (
        "assistant history with input parts",
        {"input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
        "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.",
        "input[0].content[0]",
    ),
    (
        "unknown content part",
        {"input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
        "Invalid value: 'text'.",
        "input[0].content[0]",
    ),
    (
        "function_call without arguments",
        {"input": [{"type": "function_call", "call_id": "call_1", "name": "f"}]},
        "Missing required parameter: 'input[0].arguments'.",
        "input[0].arguments",
    ),
    (
        "function_call with object arguments",
        {
            "input": [
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": {}},
                {"type": "function_call_output", "call_id": "call_1", "output": "x"},
            ]
        },
        "Invalid type for 'input[0].arguments': expected a string, but got an object instead.",
        "input[0].arguments",
    ),
    (
        "reasoning without summary",
        {"input": [{"type": "reasoning", "id": "rs_1"}]},
        "Missing required parameter: 'input[0].summary'.",
        "input[0].summary",
    ),
    (
        "orphan function_call_output",
        {"input": [{"type": "function_call_output", "call_id": "call_9", "output": "x"}]},
        "No tool call found for function call output with call_id call_9.",
        "input",
    ),
    (
        "output before its call",
        {
            "input": [
                {"type": "function_call_output", "call_id": "call_1", "output": "x"},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            ]
        },
        "No tool call found for function call output with call_id call_1.",
        "input",
    ),
    (
        "unanswered function_call",
        {
            "input": [
                {"role": "user", "content": "x"},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
                {"role": "user", "content": "y"},
            ]
        },
        "No tool output found for function call call_1.",
        "input",
    ),
    (
        "chat-shaped json_schema format",
        {"text": {"format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}},
        "Missing required parameter: 'text.format.name'.",
        "text.format.name",
    ),
    (
        "chat-shaped tool_choice",
        {"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}}},
        "Missing required parameter: 'tool_choice.name'.",
        "tool_choice.name",
    ),
    (
        "temperature on a reasoning model",
        {"model": "gpt-5-mini", "temperature": 0.2},
        "Unsupported parameter: 'temperature' is not supported with this model.",
        "temperature",
    ),
    (
        "top_p on a reasoning model",
        {"model": "o3", "top_p": 0.9},
        "Unsupported parameter: 'top_p' is not supported with this model.",
        "top_p",
    ),
    (
        "reasoning on a non-reasoning model",
        {"model": "gpt-4o", "reasoning": {"effort": "low"}},
        "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
        "reasoning.effort",
    ),
    (
        "unknown include",
        {"include": ["usage.details"]},
        "Invalid value: 'usage.details'.",
        "include[0]",
    ),
]


@pytest.mark.parametrize(
    ("fields", "message", "param"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
async def test_refuses_what_the_api_refuses(
    client: openai.AsyncOpenAI,
    fake_openai: FakeOpenAI,
    fields: dict[str, Any],
    message: str,
    param: str | None,
) -> None:
    fake_openai.enqueue(json_reply({"unexpected": "the scripted reply must stay queued"}))
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(**({"model": "gpt-4o", "input": "hi"} | fields))
    error = caught.value
    assert isinstance(error.body, dict) and error.body["type"] == "invalid_request_error"
    assert error.status_code == 400 and message in error.body["message"]
    assert error.param == param
    assert len(fake_openai.queue) == 1  # refusals jump the queue, as in the other fakes


async def test_reasoning_models_accept_the_default_temperature(
    client: openai.AsyncOpenAI,
) -> None:
    response = await client.responses.create(model="gpt-5", input="hi", temperature=1)
    assert response.output_text == "echo: hi"
    chat = await client.responses.create(model="gpt-5-chat-latest", input="hi", top_p=0.5)
    assert chat.top_p == 0.5


async def test_unknown_routes_and_other_dialects_are_404(fake_openai: FakeOpenAI) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.get(fake_openai.url + "/v1/responses/resp_nope")
        cancel = await http.post(fake_openai.url + "/v1/responses/resp_nope/cancel")
        listing = await http.get(fake_openai.url + "/v1/responses")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Response with id 'resp_nope' not found."
    assert cancel.status_code == listing.status_code == 404
    deepseek = await FakeOpenAI("deepseek").start()
    try:
        async with httpx.AsyncClient() as http:
            refused = await http.post(
                deepseek.url + "/v1/responses", json={"model": "m", "input": "hi"}
            )
        assert refused.status_code == 404
    finally:
        await deepseek.stop()


async def test_chat_completions_still_echo(client: openai.AsyncOpenAI) -> None:
    chat = await client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content == "echo: hi"


async def test_scripted_responses_with_the_builders(
    client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    """Tests can script a Response, or its stream, with the public builders."""
    output = [
        message_item("Checking.", id_="msg_1"),
        function_call_item("get_weather", '{"city":"Oslo"}', call_id="call_1", id_="fc_1"),
    ]
    scripted = response_object(output, request={"model": "gpt-4o", "tools": [WEATHER_TOOL]})
    fake_openai.enqueue(json_reply(scripted), sse_reply(fake_openai, response_events(scripted)))
    plain = await client.responses.create(model="gpt-4o", input="x", tools=[WEATHER_TOOL])
    assert plain.output_text == "Checking." and plain.output[1].type == "function_call"
    async with client.responses.stream(model="gpt-4o", input="x", tools=[WEATHER_TOOL]) as stream:
        final = await stream.get_final_response()
    assert [i.type for i in final.output] == ["message", "function_call"]
    assert final.output[1].type == "function_call"
    assert final.output[1].parsed_arguments == {"city": "Oslo"}


def test_responses_problem_is_usable_without_a_server() -> None:
    state = ResponsesState()
    assert responses_problem({"model": "gpt-4o", "input": "hi"}, state) is None
    assert responses_problem(b"not json") is not None
    status, body = responses_problem({"model": "gpt-4o", "previous_response_id": "resp_x"}) or (
        0,
        {},
    )
    assert status == 400 and body["error"]["code"] == "previous_response_not_found"
