"""The Anthropic adapter's pure translations, against golden fixtures of the documented format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from proxy.config import ProviderConfig
from proxy.errors import Fault, InvalidRequest, UpstreamFailure, UpstreamProtocolError
from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.anthropic_request import to_anthropic_request
from proxy.providers.anthropic_response import from_anthropic_message
from proxy.providers.anthropic_stream import AnthropicStreamTranslator
from proxy.schema import ChatRequest
from proxy.transport import SSEEvent

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
CREATED = 1700000000
USER = [{"role": "user", "content": "hi"}]


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def sse_events(name: str) -> list[SSEEvent]:
    """Parse a recorded stream file the way the transport does: blank-line separated events."""
    events = []
    for raw in (FIXTURES / name).read_text().split("\n\n"):
        lines = raw.strip().splitlines()
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append(SSEEvent(fields["data"].encode(), fields.get("event")))
    return events


def translate_stream(name: str) -> tuple[AnthropicStreamTranslator, list[Any]]:
    translator = AnthropicStreamTranslator(CREATED)
    chunks: list[Any] = []
    for event in sse_events(name):
        chunks += translator.translate(event)
    return translator, chunks


def translate(request: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    body, dropped = to_anthropic_request(
        request,  # type: ignore[arg-type]
        "claude-sonnet-4-5",
        stream=kwargs.pop("stream", False),
        default_max_tokens=kwargs.pop("default_max_tokens", 4096),
    )
    return dict(body), dropped


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": USER, **fields}


# --- requests -------------------------------------------------------------------------


def test_request_golden_multi_turn_tools_images_and_system() -> None:
    body, dropped = translate(fixture("tool_turns.openai.json"), stream=True)
    assert body == fixture("tool_turns.anthropic.json")
    assert dropped == ("seed", "presence_penalty", "response_format", "top_p")


def test_minimal_request_sends_default_max_tokens_and_no_optional_fields() -> None:
    body, dropped = translate(chat(), default_max_tokens=1234)
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1234,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert dropped == ()


def test_max_tokens_is_used_when_max_completion_tokens_is_absent() -> None:
    assert translate(chat(max_tokens=77))[0]["max_tokens"] == 77


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"]), ([], None), (None, None)],
)
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str] | None) -> None:
    assert translate(chat(stop=stop))[0].get("stop_sequences") == expected


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, None, None),
        (None, True, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "f"}},
            False,
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: Any) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fields = chat(tools=tools)
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    body, dropped = translate(fields)
    assert body.get("tool_choice") == expected
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert dropped == ()


def test_consecutive_assistant_turns_merge_and_empty_messages_vanish() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
        {"role": "user", "content": "d"},
    ]
    body, _ = translate({"model": "m", "messages": messages})
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "d"}]},
    ]


def test_cache_control_on_parts_and_tools_is_kept() -> None:
    mark = {"type": "ephemeral"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": mark}]}]
    tools = [{"type": "function", "function": {"name": "f"}, "cache_control": mark}]
    body, _ = translate({"model": "m", "messages": messages, "tools": tools})
    assert body["messages"][0]["content"][0]["cache_control"] == mark
    assert body["tools"][0]["cache_control"] == mark


def test_dropped_parameters_are_named_and_plain_text_format_is_not() -> None:
    fields = chat(
        frequency_penalty=1,
        logit_bias={"1": 2},
        logprobs=True,
        top_logprobs=2,
        response_format={"type": "text"},
        store=False,
        seed=None,
    )
    assert translate(fields)[1] == ("frequency_penalty", "logit_bias", "logprobs", "top_logprobs")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (chat(n=2), "n"),
        (
            chat(
                messages=[
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "t",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{"},
                            }
                        ],
                    }
                ]
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            chat(messages=[{"role": "tool", "content": "x"}]),
            "messages[0].tool_call_id",
        ),
        (
            chat(messages=[{"role": "function", "name": "f", "content": "x"}]),
            "messages[0].role",
        ),
        (
            chat(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]),
            "messages[0].content[0]",
        ),
        (
            chat(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,xx"}}
                        ],
                    }
                ]
            ),
            "messages[0].content[0]",
        ),
        (
            chat(
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": "ftp://x"}]}
                ]
            ),
            "messages[0].content[0]",
        ),
        (
            chat(messages=[{"role": "system", "content": [{"type": "image_url"}]}]),
            "messages[0].content[0]",
        ),
        (chat(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0]"),
        (chat(tool_choice={"type": "allowed_tools"}), "tool_choice"),
    ],
)
def test_untranslatable_requests_are_invalid(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate(fields)
    assert caught.value.param == param
    assert caught.value.status == 400


# --- responses ------------------------------------------------------------------------


def test_response_golden_text_and_parallel_tool_calls() -> None:
    completion = from_anthropic_message(fixture("tool_message.json"), CREATED)
    assert completion == fixture("tool_message.completion.json")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "stop"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    data = fixture("tool_message.json") | {"stop_reason": stop_reason}
    assert from_anthropic_message(data, CREATED)["choices"][0]["finish_reason"] == finish


def test_tool_calls_only_means_null_content() -> None:
    data = fixture("tool_message.json")
    data["content"] = [b for b in data["content"] if b["type"] == "tool_use"]
    message = from_anthropic_message(data, CREATED)["choices"][0]["message"]
    assert message["content"] is None
    assert [c["id"] for c in message["tool_calls"]] == ["toolu_01Paris", "toolu_01Oslo"]


def test_text_blocks_are_joined_without_separator() -> None:
    data = fixture("tool_message.json") | {
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    }
    assert from_anthropic_message(data, CREATED)["choices"][0]["message"] == {
        "role": "assistant",
        "content": "ab",
    }


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "message"}', b'{"content": []}'])
def test_malformed_response_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        adapter().chat_response(body)


# --- streams --------------------------------------------------------------------------


def test_stream_golden_text() -> None:
    translator, chunks = translate_stream("text_stream.sse.txt")
    assert chunks == fixture("text_stream.chunks.json")
    assert translator.finished
    assert translator.usage == chunks[-1]["usage"]


def test_stream_golden_thinking_text_and_parallel_tools() -> None:
    translator, chunks = translate_stream("tool_stream.sse.txt")
    assert chunks == fixture("tool_stream.chunks.json")
    assert translator.usage == fixture("tool_message.completion.json")["usage"]


def test_stream_rebuilds_the_same_tool_calls_as_the_plain_response() -> None:
    _, chunks = translate_stream("tool_stream.sse.txt")
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls", []):
                call = calls.setdefault(delta["index"], {"arguments": ""})
                call.update({k: delta[k] for k in ("id", "type") if k in delta})
                call["name"] = delta["function"].get("name", call.get("name"))
                call["arguments"] += delta["function"]["arguments"]
    plain = fixture("tool_message.completion.json")["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls.values()] == [c["id"] for c in plain]
    assert [orjson.loads(c["arguments"]) for c in calls.values()] == [
        orjson.loads(c["function"]["arguments"]) for c in plain
    ]


def test_stream_tool_without_arguments_still_gets_an_empty_object() -> None:
    translator = AnthropicStreamTranslator(CREATED)
    block = {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}
    events = [
        {"type": "content_block_start", "index": 0, "content_block": block},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {"type": "content_block_stop", "index": 0},
    ]
    chunks = [c for e in events for c in translator.translate(SSEEvent(orjson.dumps(e)))]
    arguments = "".join(
        d["function"]["arguments"] for c in chunks for d in c["choices"][0]["delta"]["tool_calls"]
    )
    assert arguments == "{}"
    assert len(chunks) == 2


def test_stream_usage_takes_the_latest_cumulative_counts() -> None:
    translator = AnthropicStreamTranslator(CREATED)
    events = [
        {
            "type": "message_start",
            "message": {"id": "m", "model": "c", "usage": {"input_tokens": 5}},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 9, "input_tokens": 6, "cache_read_input_tokens": None},
        },
        {"type": "message_stop"},
    ]
    chunks = [c for e in events for c in translator.translate(SSEEvent(orjson.dumps(e)))]
    assert chunks[1]["choices"][0]["finish_reason"] == "length"
    assert translator.usage is not None
    assert (translator.usage["prompt_tokens"], translator.usage["completion_tokens"]) == (6, 9)


def test_stream_error_event_is_a_transient_failure() -> None:
    translator = AnthropicStreamTranslator(CREATED)
    events = sse_events("overloaded_stream.sse.txt")
    assert translator.translate(events[0])[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
    }
    assert translator.translate(events[1]) == []
    with pytest.raises(UpstreamFailure) as caught:
        translator.translate(events[2])
    assert caught.value.fault is Fault.TRANSIENT
    assert "overloaded_error: Overloaded" in caught.value.reason
    assert not translator.finished


@pytest.mark.parametrize(
    "data",
    [
        b"garbage",
        b'{"type": "message_start"}',
        b'{"type": "content_block_delta", "index": 0}',
        b'{"type": "message_delta", "delta": "x"}',
    ],
)
def test_malformed_stream_events_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        AnthropicStreamTranslator(CREATED).translate(SSEEvent(data))


def test_unknown_events_and_deltas_are_skipped() -> None:
    translator = AnthropicStreamTranslator(CREATED)
    for data in (
        {"type": "some_future_event"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta"}},
        {"type": "content_block_delta", "index": 7, "delta": {"type": "input_json_delta"}},
        {"type": "content_block_stop", "index": 0},
    ):
        assert translator.translate(SSEEvent(orjson.dumps(data))) == []


# --- the adapter: URL, headers, errors ---------------------------------------------------


def adapter(**config: Any) -> AnthropicAdapter:
    values: dict[str, Any] = {
        "name": "claude",
        "type": "anthropic",
        "base_url": "https://anthropic.test/v1",
        "api_key": "sk-ant-test",
        "api_version": "2023-06-01",
    }
    return AnthropicAdapter(ProviderConfig(**(values | config)))


def test_upstream_request_url_headers_and_body() -> None:
    request: ChatRequest = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    upstream = adapter(headers={"anthropic-beta": "x"}).chat_request(
        request, "claude-haiku", stream=True, request_id="req-1"
    )
    assert upstream.url == "https://anthropic.test/v1/messages"
    assert upstream.headers == {
        "Content-Type": "application/json",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "x",
        "x-api-key": "sk-ant-test",
        "X-Request-Id": "req-1",
    }
    body = orjson.loads(upstream.body)
    assert (body["model"], body["stream"], body["max_tokens"]) == ("claude-haiku", True, 4096)


@pytest.mark.parametrize(
    ("status", "type_", "fault"),
    [
        (400, "invalid_request_error", Fault.REQUEST),
        (401, "authentication_error", Fault.ROUTE),
        (403, "permission_error", Fault.ROUTE),
        (404, "not_found_error", Fault.ROUTE),
        (413, "request_too_large", Fault.REQUEST),
        (429, "rate_limit_error", Fault.TRANSIENT),
        (500, "api_error", Fault.TRANSIENT),
        (529, "overloaded_error", Fault.TRANSIENT),
    ],
)
def test_errors_keep_the_upstream_message_and_classify_by_status(
    status: int, type_: str, fault: Fault
) -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": type_, "message": f"{type_} here"}, "request_id": "r"}
    )
    error = adapter().error(status, body, {"retry-after": "3"})
    assert error.fault is fault
    assert (error.detail.status, error.detail.type) == (status, type_)
    assert error.detail.message == f"{type_} here"
    assert error.retry_after_s == 3.0
