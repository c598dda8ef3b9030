"""The Messages dialect's pure translations, golden both ways: request -> chat request,
chat answer -> Message, chat chunks -> Messages stream events, errors -> Anthropic's shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.dialects.messages import native_body
from proxy.dialects.messages_request import to_chat_request
from proxy.dialects.messages_response import MessagesEncoder, anthropic_error, to_message
from proxy.errors import (
    AllRoutesFailed,
    AuthenticationFailed,
    BudgetExceeded,
    InvalidRequest,
    RateLimited,
    UpstreamProtocolError,
)

PNG = "iVBORw0KGgo="


def test_a_full_request_becomes_the_chat_request_golden() -> None:
    body = {
        "model": "m",
        "max_tokens": 1000,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_k": 5,
        "metadata": {"user_id": "u-42"},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "document",
                        "title": "a.pdf",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBE",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "thinking", "thinking": "from elsewhere", "signature": ""},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and?"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "bad",
                        "is_error": True,
                    },
                ],
            },
        ],
    }
    translated = to_chat_request(body)
    assert translated.native_only is None
    assert translated.dropped == ["top_k"]
    assert translated.chat == {
        "model": "m",
        "max_completion_tokens": 1000,
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "file",
                        "file": {
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "calling"}],
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"x":1}'},
                    }
                ],
                # Only the block Claude signed goes back; the other came from elsewhere.
                "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
                "reasoning_content": "hmm",
            },
            # The tool result first, then the rest of the user's turn, as chat wants.
            {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: bad"},
            {"role": "user", "content": [{"type": "text", "text": "and?"}]},
        ],
        "stop": ["END"],
        "temperature": 0.2,
        "user": "u-42",
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object"}, "description": "d"},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "reasoning_effort": "medium",
    }


@pytest.mark.parametrize(
    ("thinking", "config", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "minimal"),
        ({"type": "enabled", "budget_tokens": 2048}, None, "low"),
        ({"type": "enabled", "budget_tokens": 16384}, None, "high"),
        ({"type": "enabled", "budget_tokens": 64000}, None, "xhigh"),
        ({"type": "adaptive"}, {"effort": "max"}, "max"),
        ({"type": "adaptive"}, None, "medium"),
        ({"type": "disabled"}, None, None),
        (None, {"effort": "low"}, "low"),
    ],
)
def test_thinking_becomes_a_reasoning_effort(
    thinking: Any, config: Any, effort: str | None
) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "q"}],
    }
    if thinking is not None:
        body["thinking"] = thinking
    if config is not None:
        body["output_config"] = config
    assert to_chat_request(body).chat.get("reasoning_effort") == effort


def test_structured_output_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {
        "model": "m",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "q"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    assert to_chat_request(body).chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image"}]}]},
            "messages.0.content.0.source",
        ),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
        ({"system": 7}, "system"),
        ({"stop_sequences": "END"}, "stop"),
    ],
)
def test_bad_requests_name_the_field(change: dict[str, Any], param: str) -> None:
    body = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "q"}]}
    body |= change
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(InvalidRequest) as caught:
        to_chat_request(body)
    assert caught.value.param == param


def test_what_only_claude_can_do_is_marked_native_only() -> None:
    body = {
        "model": "m",
        "max_tokens": 9,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [{"role": "user", "content": "q"}],
    }
    assert "only Claude routes" in str(to_chat_request(body).native_only)
    body = {
        "model": "m",
        "max_tokens": 9,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "file", "file_id": "f_1"}}],
            }
        ],
    }
    assert "image sources of type 'file'" in str(to_chat_request(body).native_only)


def test_count_tokens_bodies_have_no_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    assert "max_completion_tokens" not in to_chat_request(body, counting=True).chat


def test_native_body_caps_and_keeps_only_signed_thinking() -> None:
    body = {
        "model": "alias",
        "max_tokens": 5000,
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": ""},
                    {"type": "thinking", "thinking": "u", "signature": "s"},
                    {"type": "text", "text": "a"},
                ],
            },
        ],
    }
    native = native_body(body, "claude-x", 1000)
    assert native["model"] == "claude-x" and native["max_tokens"] == 1000
    assert [b.get("signature") for b in native["messages"][1]["content"]] == ["s", None]
    assert body["messages"][1]["content"][0]["signature"] == ""  # the client's body untouched


def completion(message: dict[str, Any], finish: str, usage: dict[str, Any]) -> Any:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "alias",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def test_an_answer_becomes_a_message_golden() -> None:
    answer = completion(
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "think",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a":1}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "g", "arguments": "not json"},
                },
            ],
        },
        "tool_calls",
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 30},
        },
    )
    message = to_message(answer, show_thinking=True)
    assert message["id"].startswith("msg_")
    del message["id"]
    assert message == {
        "type": "message",
        "role": "assistant",
        "model": "alias",
        "content": [
            {"type": "thinking", "thinking": "think", "signature": ""},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        # Anthropic's input_tokens leave out cached input.
        "usage": {
            "input_tokens": 70,
            "output_tokens": 20,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 30,
        },
    }
    assert to_message(answer, show_thinking=False)["content"][0]["type"] == "text"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_finish_reasons(finish: str, stop_reason: str) -> None:
    answer = completion({"role": "assistant", "content": "x"}, finish, {})
    assert to_message(answer, show_thinking=False)["stop_reason"] == stop_reason


def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> Any:
    data: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        data["usage"] = usage
        data["choices"] = []
    return data


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().strip().split("\n\n"):
        name, data = block.split("\n")
        out.append((name.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return out


def test_a_stream_becomes_messages_events_golden() -> None:
    encoder = MessagesEncoder("alias", show_thinking=True)
    raw = encoder.encode_all(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "hm"}),
            chunk({"content": "Hi"}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "call_2", "function": {"name": "g", "arguments": "{}"}}
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            chunk({}, usage={"prompt_tokens": 10, "completion_tokens": 7}),
        ]
    )
    raw += encoder.finish()
    got = events(raw)
    names = [name for name, _ in got]
    assert all(data["type"] == name for name, data in got)  # the event: line says the type
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",  # a tool's arguments go in one piece, when it closes
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = got[0][1]["message"]
    assert start["content"] == [] and start["model"] == "alias" and "usage" in start
    starts = [data for name, data in got if name == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2, 3]
    assert [s["content_block"]["type"] for s in starts] == [
        "thinking",
        "text",
        "tool_use",
        "tool_use",
    ]
    assert starts[2]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "f",
        "input": {},
    }
    partial = [
        d["delta"]["partial_json"]
        for n, d in got
        if d.get("index") == 2 and n == "content_block_delta"
    ]
    assert partial == ['{"a":1}']
    delta = got[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["input_tokens"] == 10 and delta["usage"]["output_tokens"] == 7


def test_interleaved_tool_arguments_fail_the_stream_honestly() -> None:
    encoder = MessagesEncoder("alias", show_thinking=False)
    encoder.encode_all(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{"}}
                    ]
                }
            ),
        ]
    )
    with pytest.raises(UpstreamProtocolError):
        encoder.encode_all([chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})])
    ending = events(encoder.fail(UpstreamProtocolError("boom")))
    assert ending[-1][0] == "error" and ending[-1][1]["error"]["type"] == "api_error"


def test_an_empty_stream_still_has_start_and_stop() -> None:
    encoder = MessagesEncoder("alias", show_thinking=False)
    names = [name for name, _ in events(encoder.encode_all([]) + encoder.finish())]
    assert names == ["message_start", "ping", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequest("x"), 400, "invalid_request_error"),
        (AuthenticationFailed("x"), 401, "authentication_error"),
        (BudgetExceeded("x"), 402, "billing_error"),
        (RateLimited("x"), 429, "rate_limit_error"),
        (AllRoutesFailed("x"), 529, "overloaded_error"),
    ],
)
def test_errors_in_anthropics_shape(error: Any, status: int, kind: str) -> None:
    got_status, body = anthropic_error(error)
    assert got_status == status
    assert orjson.loads(body) == {"type": "error", "error": {"type": kind, "message": "x"}}


def test_broken_tool_arguments_reach_the_client_as_an_object() -> None:
    """The anthropic SDK parses a tool block's fragments as JSON and fails on garbage."""
    encoder = MessagesEncoder("alias", show_thinking=False)
    raw = encoder.encode_all(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{'a': 1"}}
                    ]
                }
            )
        ]
    )
    raw += encoder.finish()
    deltas = [d["delta"] for n, d in events(raw) if n == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": "{}"}]


def test_a_refusal_is_text_with_the_refusal_stop_reason() -> None:
    answer = completion({"role": "assistant", "content": None, "refusal": "I can't."}, "stop", {})
    message = to_message(answer, show_thinking=False)
    assert message["content"] == [{"type": "text", "text": "I can't."}]
    assert message["stop_reason"] == "refusal"
    encoder = MessagesEncoder("alias", show_thinking=False)
    got = events(
        encoder.encode_all([chunk({"refusal": "No."}), chunk({}, "stop")]) + encoder.finish()
    )
    assert [d["delta"] for n, d in got if n == "content_block_delta"] == [
        {"type": "text_delta", "text": "No."}
    ]
    assert got[-2][1]["delta"]["stop_reason"] == "refusal"
