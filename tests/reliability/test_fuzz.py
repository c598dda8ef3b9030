"""Hypothesis against the chat endpoint: any body, any headers -> an envelope, never a 500.

The gateway runs in its own thread (its own event loop) so hypothesis can drive it with
a plain synchronous client.
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

from tests.support.configs import MOCK, alias, gateway_toml
from tests.support.gateway import KEY
from tests.support.threaded import threaded_gateway

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
roles = st.sampled_from(["user", "system", "assistant", "tool", "developer", "wizard", 3, None])
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles},
        optional={"content": json_values, "tool_calls": json_values, "tool_call_id": json_values},
    ),
    max_size=3,
)
chat_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["m", "unknown", ""]) | json_values,
        "messages": messages | json_values,
        "stream": st.booleans() | json_values,
        "max_tokens": st.integers(-5, 50) | json_values,
        "temperature": st.floats(allow_nan=False) | json_values,
        "n": st.integers(-1, 3),
        "stop": json_values,
        "tools": json_values,
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


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("fuzz")
    path: Path = directory / "gateway.toml"
    path.write_text(
        gateway_toml(MOCK, alias("m", ("demo", "echo")), body_mb=0.05)
        + f'\n[storage]\ndatabase = "{directory / "fuzz.db"}"\n'
    )
    with threaded_gateway(path) as url:
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
