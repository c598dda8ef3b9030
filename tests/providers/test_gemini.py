"""Pure Gemini translations: request, schema cleaning, and a recorded stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.errors import InvalidRequest, UpstreamProtocolError
from proxy.providers.gemini_request import clean_schema, to_gemini_request
from proxy.providers.gemini_response import GeminiStreamTranslator, finish_reason, to_usage
from proxy.transport import SSEEvent

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


def events(name: str) -> list[SSEEvent]:
    text = (FIXTURES / name).read_bytes()
    return [
        SSEEvent(block.removeprefix(b"data: ")) for block in text.split(b"\n\n") if block.strip()
    ]


def test_recorded_tool_call_stream() -> None:
    translator = GeminiStreamTranslator()
    chunks = [c for e in events("tool_call_stream.sse.txt") for c in translator.translate(e)]
    assert translator.finished
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": "Let me check. "}
    # Thoughts are reasoning, not the answer.
    assert deltas[1] == {"reasoning_content": "planning"}
    call = deltas[2]["tool_calls"][0]
    assert call["index"] == 0 and call["function"] == {
        "name": "weather",
        "arguments": '{"city":"Paris"}',
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert (
        chunks[-1]["usage"]
        == translator.usage
        == {
            "prompt_tokens": 12,
            "completion_tokens": 13,
            "total_tokens": 25,
            "prompt_tokens_details": {"cached_tokens": 5},
            "completion_tokens_details": {"reasoning_tokens": 4},
        }
    )


def test_stream_error_event_is_an_upstream_failure() -> None:
    with pytest.raises(UpstreamProtocolError):
        GeminiStreamTranslator().translate(SSEEvent(b'{"error": {"message": "overloaded"}}'))


def test_schema_cleaning_is_recursive() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "$schema": "x",
        "properties": {
            "list": {"type": "array", "items": {"type": ["integer", "null"], "const": 3}},
            "either": {"anyOf": [{"type": "string", "default": "a"}]},
        },
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": {"type": "integer", "nullable": True}},
            "either": {"anyOf": [{"type": "string"}]},
        },
    }


def test_request_merges_turns_and_reports_dropped_parameters() -> None:
    body, dropped = to_gemini_request(
        {
            "model": "g",
            "n": 1,
            "seed": 4,
            "logprobs": True,
            "parallel_tool_calls": False,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"schema": {"type": "object", "additionalProperties": False}},
            },
            "messages": [
                {"role": "developer", "content": "rules"},
                {"role": "user", "content": "a"},
                {"role": "user", "content": "b"},
            ],
        }
    )
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "rules"}]}
    assert body["generationConfig"] == {
        "candidateCount": 1,
        "seed": 4,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object"},
    }
    assert dropped == ("logprobs",)  # parallel_tool_calls=false asks for nothing


def test_bad_inputs_are_client_errors() -> None:
    with pytest.raises(InvalidRequest):
        to_gemini_request(
            {
                "model": "g",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ],
            }
        )
    with pytest.raises(InvalidRequest):
        to_gemini_request(
            {
                "model": "g",
                "tool_choice": "sometimes",
                "messages": [{"role": "user", "content": "x"}],
            }
        )


def test_finish_reasons_and_usage() -> None:
    assert finish_reason("MAX_TOKENS", 0) == "length"
    assert finish_reason("SPII", 0) == "content_filter"
    assert finish_reason("STOP", 2) == "tool_calls"
    assert finish_reason("OTHER", 0) == "stop"
    assert to_usage({"promptTokenCount": 3}) == {
        "prompt_tokens": 3,
        "completion_tokens": 0,
        "total_tokens": 3,
    }
