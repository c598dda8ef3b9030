"""OpenAI-shaped providers: what each one's request really looks like on the wire."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.config import ProviderConfig
from proxy.errors import InvalidRequest
from proxy.providers.deepseek import DeepSeekAdapter
from proxy.providers.mistral import MistralAdapter, tool_call_id
from proxy.providers.openai import OpenAIAdapter, OpenAICompatibleAdapter

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def config(kind: str) -> ProviderConfig:
    return ProviderConfig(name="p", type=kind, base_url="http://127.0.0.1:9/v1", api_key="sk")


def sent(adapter: OpenAIAdapter, request: dict[str, Any], stream: bool = False) -> tuple[Any, ...]:
    upstream = adapter.chat_request(request, "upstream-model", stream=stream, request_id="r1")  # type: ignore[arg-type]
    return orjson.loads(upstream.body), upstream.dropped, upstream.headers


def test_openai_passes_everything_through_and_always_asks_for_stream_usage() -> None:
    request = {
        "model": "alias",
        "tools": TOOLS,
        "tool_choice": "required",
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "response_format": {"type": "json_object"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, IMAGE]}],
    }
    body, dropped, headers = sent(OpenAIAdapter(config("openai")), request, stream=True)
    assert body == {**request, "model": "upstream-model", "stream_options": {"include_usage": True}}
    assert dropped == ()
    assert headers["Authorization"] == "Bearer sk" and headers["X-Request-Id"] == "r1"


def test_mistral_dialect() -> None:
    request = {
        "model": "alias",
        "max_completion_tokens": 50,
        "seed": 3,
        "tool_choice": "required",
        "user": "u",
        "logprobs": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abcdefghijkl",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abcdefghijkl", "content": "42"},
        ],
    }
    body, dropped, _ = sent(MistralAdapter(config("mistral")), request, stream=True)
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    assert body["random_seed"] == 3 and "seed" not in body
    assert body["tool_choice"] == "any"
    assert "stream_options" not in body  # Mistral reports usage on its own, and 422s this
    assert set(dropped) == {"user", "logprobs"}
    mapped = body["messages"][1]["tool_calls"][0]["id"]
    assert len(mapped) == 9 and mapped.isalnum()
    assert body["messages"][2]["tool_call_id"] == mapped
    assert tool_call_id("abcDEF123") == "abcDEF123"


def test_deepseek_dialect() -> None:
    adapter = DeepSeekAdapter(config("deepseek"))
    body, dropped, _ = sent(
        adapter,
        {
            "model": "a",
            "max_completion_tokens": 9,
            "seed": 1,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body
    assert dropped == ("seed",)
    with pytest.raises(InvalidRequest) as caught:
        sent(adapter, {"model": "a", "n": 2, "messages": [{"role": "user", "content": "x"}]})
    assert caught.value.param == "n" and caught.value.status == 400


def test_fields_handed_out_for_other_providers_go_only_where_they_are_taken() -> None:
    """A tool loop that started on Claude or Gemini and falls back to another provider:
    thinking blocks, reasoning text and thought signatures are not sent where the API
    would refuse them, and are kept where they are needed."""
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "sig"}},
    }
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [call],
        "reasoning_content": "thought",
        "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}],
    }
    request = {"model": "alias", "messages": [{"role": "user", "content": "hi"}, assistant]}
    openai_body, _, _ = sent(OpenAIAdapter(config("openai")), request)
    deepseek_body, _, _ = sent(DeepSeekAdapter(config("deepseek")), request)
    compatible_body, _, _ = sent(OpenAICompatibleAdapter(config("openai_compatible")), request)
    sent_openai = openai_body["messages"][1]
    assert "thinking_blocks" not in sent_openai and "reasoning_content" not in sent_openai
    assert "extra_content" not in sent_openai["tool_calls"][0]
    assert deepseek_body["messages"][1]["reasoning_content"] == "thought"
    assert "thinking_blocks" not in deepseek_body["messages"][1]
    assert compatible_body["messages"][1] == assistant  # e.g. Google's own OpenAI endpoint
    assert request["messages"][1] is assistant and "thinking_blocks" in assistant  # untouched
