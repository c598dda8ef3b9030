"""The Responses dialect's pure translations, golden both ways: request -> chat request,
chat answer -> Response, chat chunks -> Responses stream events, provider state kept in
reasoning items, and the native body an OpenAI route gets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.dialects.base import ResponsesInbound
from proxy.dialects.reasoning_state import decode_state, encode_state
from proxy.dialects.responses import native_body
from proxy.dialects.responses_request import input_items, to_chat_request
from proxy.dialects.responses_response import ResponsesEncoder, to_response
from proxy.errors import InvalidRequest, UpstreamProtocolError

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "d",
    "parameters": {"type": "object"},
    "strict": True,
}


def translate(body: dict[str, Any]) -> Any:
    return to_chat_request(body, input_items(body))


def test_an_agent_turn_becomes_the_chat_request_golden() -> None:
    """The second turn of an agent, as openai-agents sends it: the full history."""
    state = encode_state(
        {"thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]}
    )
    body = {
        "model": "m",
        "instructions": "You are helpful.",
        "include": [],
        "max_output_tokens": 500,
        "reasoning": {"effort": "low"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "out",
                "schema": {"type": "object"},
                "strict": True,
            }
        },
        "tools": [WEATHER],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "input": [
            {"role": "user", "content": "Weather in Paris?"},
            {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": state},
            {"id": "rs_openai", "type": "reasoning", "summary": [], "encrypted_content": "opaque"},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}
                ],
            },
            {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
                "status": "completed",
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "and this?"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "a.pdf",
                    },
                ],
            },
        ],
    }
    translated = translate(body)
    assert translated.native_only is None and translated.dropped == []
    assert translated.chat == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
                "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and this?"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                    {
                        "type": "file",
                        "file": {
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                    },
                ],
            },
        ],
        "max_completion_tokens": 500,
        "parallel_tool_calls": False,
        "reasoning_effort": "low",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "d",
                    "parameters": {"type": "object"},
                    "strict": True,
                },
            }
        ],
        "tool_choice": "required",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
        },
    }


def test_gemini_signatures_go_back_on_their_calls() -> None:
    state = encode_state({"signatures": {"call_1": "sig-g"}})
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "q"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": ""},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": state},
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
        ],
    }
    call = translate(body).chat["messages"][1]["tool_calls"][0]
    assert call["extra_content"] == {"google": {"thought_signature": "sig-g"}}
    assert call["function"]["arguments"] == "{}"


def test_allowed_tools_narrow_the_tools() -> None:
    other = {**WEATHER, "name": "other"}
    body = {
        "model": "m",
        "input": "q",
        "tools": [WEATHER, other],
        "tool_choice": {
            "type": "allowed_tools",
            "mode": "auto",
            "tools": [{"type": "function", "name": "other"}],
        },
    }
    chat = translate(body).chat
    assert [t["function"]["name"] for t in chat["tools"]] == ["other"]
    assert chat["tool_choice"] == "auto"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0]: the hosted tool 'web_search'"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice: the hosted tool 'file_search'"),
        (
            {"input": [{"type": "web_search_call", "id": "ws_1"}]},
            "input[0]: 'web_search_call' items",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "images by file_id",
        ),
        ({"prompt": {"id": "pmpt_1"}}, "stored prompts"),
    ],
)
def test_what_only_openai_can_do_is_native_only(change: dict[str, Any], reason: str) -> None:
    body = {"model": "m", "input": "q", **change}
    native_only = translate(body).native_only
    assert native_only is not None and reason in native_only and "only OpenAI routes" in native_only


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": 7}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": [{"type": "video"}]}]}, "input[0].content[0]"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"metadata": {"a": 1}}, "metadata"),
    ],
)
def test_bad_requests_name_the_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate({"model": "m", "input": "q", **change})
    assert caught.value.param == param


def test_fields_other_routes_cannot_honour_are_named_as_dropped() -> None:
    body = {
        "model": "m",
        "input": "q",
        "text": {"verbosity": "low"},
        "service_tier": "flex",
        "new_field": 1,
    }
    assert translate(body).dropped == ["service_tier", "text.verbosity", "new_field"]


def inbound(body: dict[str, Any]) -> ResponsesInbound:
    return ResponsesInbound(
        {}, body, False, response_id="resp_1", created_at=100, items=input_items(body)
    )


def completion(message: dict[str, Any], finish: str = "stop") -> Any:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "alias",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    }


def test_an_answer_becomes_a_response_golden() -> None:
    answer = completion(
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "hm",
            "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
            ],
        },
        "tool_calls",
    )
    body = {"model": "alias", "input": "q", "instructions": "be nice", "tools": [WEATHER]}
    response = to_response(answer, inbound(body), "alias")
    output = response.pop("output")
    assert [item["type"] for item in output] == ["reasoning", "message", "function_call"]
    reasoning, message, call = output
    assert reasoning["summary"] == [{"type": "summary_text", "text": "hm"}]
    assert decode_state(reasoning["encrypted_content"]) == {
        "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
        "reasoning_content": "hm",
    }
    assert message["content"] == [
        {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}
    ]
    assert message["role"] == "assistant" and message["status"] == "completed"
    assert (
        call["arguments"] == "{}" and call["call_id"] == "call_1" and call["status"] == "completed"
    )
    assert (
        response["id"] == "resp_1"
        and response["object"] == "response"
        and response["status"] == "completed"
    )
    assert response["instructions"] == "be nice" and response["tools"] == [WEATHER]
    assert response["usage"] == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
        "output_tokens": 10,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 30,
    }
    for required in ("created_at", "model", "parallel_tool_calls", "tool_choice"):
        assert response[required] is not None


def test_a_cut_answer_is_incomplete() -> None:
    response = to_response(
        completion({"role": "assistant", "content": "x"}, "length"), inbound({"input": "q"}), "a"
    )
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def chunk(delta: dict[str, Any], finish: str | None = None) -> Any:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def events(raw: bytes) -> list[dict[str, Any]]:
    found = []
    for block in raw.decode().strip().split("\n\n"):
        name, data = block.split("\n")
        event = orjson.loads(data.removeprefix("data: "))
        assert name == f"event: {event['type']}"
        found.append(event)
    return found


def test_a_stream_becomes_responses_events_golden() -> None:
    request = inbound({"model": "alias", "input": "q"})
    encoder = ResponsesEncoder(request, "alias")
    raw = encoder.encode_all(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "hm"}),
            chunk({"content": "Hi"}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "call_2", "function": {"name": "g", "arguments": ""}}
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        ]
    )
    raw += encoder.finish()
    got = events(raw)
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    assert [e["type"] for e in got] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert got[0]["response"]["output"] == [] and got[0]["response"]["status"] == "in_progress"
    added = [e for e in got if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1, 2, 3]
    assert added[1]["item"]["content"] == []
    done_args = [e for e in got if e["type"] == "response.function_call_arguments.done"]
    assert [(e["arguments"], e["name"]) for e in done_args] == [('{"a":1}', "f"), ("{}", "g")]
    final = got[-1]["response"]
    assert [i["type"] for i in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][1]["content"][0]["text"] == "Hi"
    assert request.answer == final  # what the gateway stores


def test_claude_thinking_in_a_stream_becomes_a_state_item() -> None:
    request = inbound({"input": "q"})
    encoder = ResponsesEncoder(request, "alias")
    block = {"type": "thinking", "thinking": "t", "signature": "s"}
    raw = encoder.encode_all(
        [
            chunk({"reasoning_content": "t"}),
            chunk({"thinking_blocks": [block]}),
            chunk({"content": "A"}, "stop"),
        ]
    )
    raw += encoder.finish()
    output = events(raw)[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["reasoning", "message", "reasoning"]
    assert decode_state(output[-1]["encrypted_content"]) == {
        "thinking_blocks": [block],
        "reasoning_content": "t",
    }


def test_a_failed_stream_ends_with_response_failed() -> None:
    encoder = ResponsesEncoder(inbound({"input": "q"}), "alias")
    encoder.encode_all(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g"}}]}),
        ]
    )
    with pytest.raises(UpstreamProtocolError):
        encoder.encode_all([chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]})])
    ending = events(encoder.fail(UpstreamProtocolError("boom")))
    assert ending[-1]["type"] == "response.failed"
    assert ending[-1]["response"]["error"]["code"] == "server_error"
    assert "error" not in ending[-1]  # a top-level error key makes the SDK raise at once


def test_the_native_body_spells_out_the_conversation_and_keeps_nothing_at_openai() -> None:
    state = encode_state({"signatures": {"c": "s"}})
    body = {
        "model": "alias",
        "input": "next",
        "previous_response_id": "resp_0",
        "max_output_tokens": 900,
        "include": ["message.output_text.logprobs"],
    }
    request = inbound(body)
    request.history = [
        {"id": "msg_a", "type": "message", "role": "user", "content": "first"},
        {"id": "rs_gw", "type": "reasoning", "summary": [], "encrypted_content": state},
        {"id": "rs_oa", "type": "reasoning", "summary": [], "encrypted_content": "openai-opaque"},
        {
            "id": "msg_b",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "x"}],
        },
    ]
    native = native_body(request, "gpt-x", 300)
    assert native["model"] == "gpt-x" and native["store"] is False
    assert native["max_output_tokens"] == 300
    assert "previous_response_id" not in native
    assert native["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert native["input"] == [
        {"type": "message", "role": "user", "content": "first"},
        {"id": "rs_oa", "type": "reasoning", "summary": [], "encrypted_content": "openai-opaque"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]},
        {"type": "message", "role": "user", "content": "next"},
    ]
