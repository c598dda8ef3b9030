"""What the spans say, read from a request's parameters: never its messages."""

from __future__ import annotations

from proxy.errors import UpstreamConnectError, UpstreamTimeout
from proxy.tracing.attributes import attempt_error_type, request_params, server_attributes


def test_request_parameters_are_read_as_sent() -> None:
    params = request_params(
        {
            "max_tokens": 500,
            "max_completion_tokens": 200,  # both: the smaller is what every adapter sends
            "temperature": 1,
            "top_p": True,  # not a number
            "seed": 7,
            "n": 1,
            "messages": [{"role": "user", "content": "not an attribute"}],
        }
    )
    assert params == {
        "gen_ai.request.max_tokens": 200,
        "gen_ai.request.temperature": 1.0,
        "gen_ai.request.seed": 7,
    }


def test_error_types_are_low_cardinality() -> None:
    assert attempt_error_type(UpstreamTimeout("no response headers within 30.0s")) == "timeout"
    assert attempt_error_type(UpstreamConnectError("refused")) == "UpstreamConnectError"


def test_the_server_is_the_providers_host_and_port() -> None:
    assert dict(server_attributes("https://api.openai.com/v1")) == {
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    assert dict(server_attributes("http://10.0.0.5:8000/v1"))["server.port"] == 8000
    assert server_attributes("") == ()  # the in-process mock
