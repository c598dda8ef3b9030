"""Hypothesis against the answer endpoints (chat completions, Messages, Responses): any
body, any headers -> an answer or the API's error shape, never a 500.

Every provider type is behind an alias (mock, and strict fakes of OpenAI, Anthropic, Gemini,
DeepSeek and Mistral), so each adapter's translation meets every odd shape. The gateway and
the fakes run in threads of their own (their own event loops), so hypothesis can drive
them with a plain synchronous client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.configs import MOCK, alias, gateway_toml, provider
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import KEY
from tests.support.threaded import threaded, threaded_gateway

EXAMPLES = 400


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ALIASES = ["m", "openai", "anthropic", "gemini", "deepseek", "mistral"]
roles = st.sampled_from(["user", "system", "assistant", "tool", "developer", "wizard", 3, None])
# Well-shaped containers with odd values inside: the shapes that reach the adapters.
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "x"])},
    optional={
        "text": json_values,
        "image_url": json_values | st.fixed_dictionaries({"url": json_values}),
        "input_audio": json_values,
        "file": json_values,
        "refusal": json_values,
    },
)
tool_calls = st.lists(
    json_values
    | st.fixed_dictionaries(
        {"id": json_values, "type": st.just("function")},
        optional={"function": json_values | st.fixed_dictionaries({"name": json_values})},
    ),
    max_size=2,
)
tools = st.lists(
    json_values
    | st.fixed_dictionaries(
        {"type": st.just("function")},
        optional={
            "function": json_values
            | st.fixed_dictionaries(
                {"name": st.text(max_size=5) | json_values},
                optional={"parameters": json_values, "description": json_values},
            )
        },
    ),
    max_size=2,
)
response_formats = json_values | st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "json_object", "json_schema", "x"])},
    optional={"json_schema": json_values | st.fixed_dictionaries({"schema": json_values})},
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles},
        optional={
            "content": json_values | st.lists(parts, max_size=2),
            "tool_calls": json_values | tool_calls,
            "tool_call_id": json_values,
            "name": json_values,
        },
    ),
    max_size=3,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([*ALIASES, "unknown", ""]) | json_values,
        "messages": messages | json_values,
        "stream": st.booleans() | json_values,
        "max_tokens": st.integers(-5, 50) | json_values,
        "temperature": st.floats(allow_nan=False) | json_values,
        "n": st.integers(-1, 3),
        "stop": json_values,
        "tools": json_values | tools,
        "tool_choice": json_values | st.sampled_from(["auto", "none", "required"]),
        "response_format": response_formats,
        "stream_options": json_values,
        "user": json_values,
    },
)
# The stdlib encoder: it also writes integers beyond 64 bits, which the gateway must refuse.
bodies = chat_bodies.map(encode) | json_values.map(encode) | st.binary(max_size=200)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from([f"Bearer {KEY}", "Bearer nope", "Basic x", "", KEY]),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "", "x/y"]),
        "X-Request-Id": st.text(max_size=80).filter(
            lambda t: t.isascii() and t.isprintable() and t == t.strip()
        ),
        "Cache-Control": st.sampled_from(["no-cache", "max-age=0", "nonsense"]),
    },
)


class Upstreams:
    """One strict fake per wire format, started together in one loop."""

    async def start(self) -> Upstreams:
        self.openai = await FakeOpenAI().start()
        self.anthropic = await FakeAnthropic().start()
        self.gemini = await FakeGemini().start()
        return self

    async def stop(self) -> None:
        for fake in (self.openai, self.anthropic, self.gemini):
            await fake.stop()


def every_provider(fakes: Upstreams) -> str:
    key = {"api_key_env": "FUZZ_KEY"}
    return "\n".join(
        [
            MOCK,
            provider("openai", fakes.openai.url, kind="openai", **key),
            provider("deepseek", fakes.openai.url, kind="deepseek", **key),
            provider("mistral", fakes.openai.url, kind="mistral", **key),
            provider("anthropic", fakes.anthropic.url, kind="anthropic", **key),
            provider("gemini", fakes.gemini.url, kind="gemini", **key),
            alias("m", ("demo", "echo")),
            alias("openai", ("openai", "gpt-4o-mini")),
            alias("deepseek", ("deepseek", "deepseek-chat")),
            alias("mistral", ("mistral", "mistral-small-latest")),
            alias("anthropic", ("anthropic", "claude-sonnet-4-5")),
            alias("gemini", ("gemini", "gemini-2.5-flash")),
        ]
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("fuzz")
    path: Path = directory / "gateway.toml"
    with threaded(lambda: Upstreams().start()) as fakes:
        path.write_text(
            gateway_toml(every_provider(fakes), body_mb=0.05)
            + f'\n[storage]\ndatabase = "{directory / "fuzz.db"}"\n'
        )
        with threaded_gateway(path, env={"FUZZ_KEY": "sk-fuzz-key-0123456789"}) as url:
            yield url


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies, sent_headers=headers)
def test_any_request_gets_an_answer_or_an_envelope(
    gateway: str, body: bytes, sent_headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        response = http.post("/v1/chat/completions", content=body, headers=sent_headers)
    assert response.status_code != 500 and response.status_code < 502, response.text
    assert response.headers["x-request-id"]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert isinstance(error["message"], str) and error["message"]
        assert 400 <= response.status_code < 500


# The Anthropic Messages API's shapes, with odd values inside.
anthropic_sources = json_values | st.fixed_dictionaries(
    {"type": st.sampled_from(["base64", "url", "text", "content", "file", "x"])},
    optional={"media_type": json_values, "data": json_values, "url": json_values},
)
anthropic_blocks = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image", "document", "tool_use", "tool_result", "thinking", "x"]
        )
    },
    optional={
        "text": json_values,
        "source": anthropic_sources,
        "id": json_values,
        "name": json_values,
        "input": json_values,
        "tool_use_id": json_values,
        "content": json_values | st.lists(json_values, max_size=2),
        "is_error": json_values,
        "thinking": json_values,
        "signature": json_values,
    },
)
messages_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([*ALIASES, "unknown"]) | json_values,
        "max_tokens": st.integers(-5, 50) | json_values,
        "messages": json_values
        | st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system", 3])},
                optional={"content": json_values | st.lists(anthropic_blocks, max_size=3)},
            ),
            max_size=3,
        ),
        "system": json_values | st.lists(anthropic_blocks, max_size=2),
        "tools": json_values
        | st.lists(
            st.fixed_dictionaries(
                {"name": json_values},
                optional={"input_schema": json_values, "type": json_values},
            ),
            max_size=2,
        ),
        "tool_choice": json_values
        | st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}),
        "thinking": json_values
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "adaptive", "disabled"])},
            optional={"budget_tokens": st.integers(-1, 5000) | json_values},
        ),
        "output_config": json_values,
        "stop_sequences": json_values,
        "metadata": json_values,
        "stream": st.booleans() | json_values,
        "top_k": json_values,
    },
)
# The Responses API's shapes, with odd values inside.
responses_items = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["message", "function_call", "function_call_output", "reasoning", "web_search_call"]
        )
        | json_values,
        "role": st.sampled_from(["user", "assistant", "developer", "x"]) | json_values,
        "content": json_values
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["input_text", "output_text", "input_image", "x"])},
                optional={"text": json_values, "image_url": json_values},
            ),
            max_size=2,
        ),
        "call_id": json_values,
        "name": json_values,
        "arguments": json_values,
        "output": json_values,
        "encrypted_content": json_values | st.text(max_size=12).map(lambda t: f"gw1:{t}"),
        "summary": json_values,
    },
)
responses_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([*ALIASES, "unknown"]) | json_values,
        "input": json_values | st.lists(responses_items, max_size=3),
        "instructions": json_values,
        "tools": json_values
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["function", "web_search"]) | json_values},
                optional={"name": json_values, "parameters": json_values},
            ),
            max_size=2,
        ),
        "tool_choice": json_values,
        "text": json_values | st.fixed_dictionaries({"format": response_formats}),
        "reasoning": json_values,
        "max_output_tokens": st.integers(-5, 50) | json_values,
        "previous_response_id": json_values,
        "store": json_values,
        "stream": st.booleans() | json_values,
        "metadata": json_values,
    },
)


@settings(
    max_examples=EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=messages_bodies.map(encode) | json_values.map(encode) | st.binary(max_size=100))
def test_any_messages_request_gets_an_answer_or_anthropics_error(gateway: str, body: bytes) -> None:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        response = http.post("/v1/messages", content=body, headers={"x-api-key": KEY})
    assert response.status_code != 500 and response.status_code < 502, response.text
    if response.status_code >= 400:
        data = response.json()
        assert data["type"] == "error" and set(data["error"]) == {"type", "message"}


@settings(
    max_examples=EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=responses_bodies.map(encode) | json_values.map(encode) | st.binary(max_size=100))
def test_any_responses_request_gets_an_answer_or_an_envelope(gateway: str, body: bytes) -> None:
    with httpx.Client(base_url=gateway, timeout=10) as http:
        response = http.post(
            "/v1/responses", content=body, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert response.status_code != 500 and response.status_code < 502, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
