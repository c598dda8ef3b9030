"""Traces end to end: the real OTLP exporter sending to a collector on loopback.

A request gets a SERVER span (the client's trace continued), each upstream attempt a
CLIENT span under it, whose context the upstream receives as `traceparent`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, alias, gateway_toml, provider
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI, completion, stream_events
from tests.support.fake_upstream import json_reply, reset, sse_reply
from tests.support.gateway import KEY, RunningGateway
from tests.support.otlp_collector import CollectedSpan, Collector

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
PROMPT = "the secret plan is in the attic"
USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    running = await Collector().start()
    yield running
    await running.stop()


def tracing(collector: Collector, **extra: object) -> str:
    lines = ["[tracing]", "enabled = true", f'endpoint = "{collector.endpoint}"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def two_routes(a: FakeOpenAI, b: FakeOpenAI, *sections: str, **kwargs: Any) -> str:
    return gateway_toml(
        provider("a", a.url),
        provider("b", b.url),
        alias("m", ("a", "model-a"), ("b", "model-b")),
        *sections,
        **kwargs,
    )


async def post(
    gw: RunningGateway, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    async with gw.http() as http:
        return await http.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": PROMPT}], **body},
            headers={"Authorization": f"Bearer {KEY}", **(headers or {})},
        )


def parent_of(headers: Any) -> tuple[str, bool]:
    """The span an upstream request names as its parent, and whether it is sampled."""
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00"
    return f"{trace_id}-{span_id}", bool(int(flags, 16) & 1)


def ids(span: CollectedSpan) -> tuple[str, bool]:
    return f"{span.trace_id}-{span.span_id}", True


async def test_a_fallback_is_one_server_span_with_a_client_span_per_attempt(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    second_openai: FakeOpenAI,
    collector: Collector,
) -> None:
    fake_openai.enqueue(json_reply({"error": {"message": "down"}}, status=500))
    second_openai.enqueue(json_reply(completion("hi", model="model-b-0613", usage=USAGE)))
    gw = await gateway_factory(
        two_routes(fake_openai, second_openai, tracing(collector), attempts=0)
    )
    response = await post(
        gw,
        {"max_tokens": 64, "temperature": 0.2},
        {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "tracestate": "vendor=opaque"},
    )
    assert response.status_code == 200
    await gw.stop()  # the lifespan's close exports what is buffered

    assert len(collector.spans) == 3
    (server,) = collector.of_kind("server")
    first, second = collector.of_kind("client")
    # The client's trace goes on: the gateway's span is a child of the client's.
    assert server.trace_id == first.trace_id == second.trace_id == TRACE_ID
    assert server.parent_id == CLIENT_SPAN
    assert first.parent_id == second.parent_id == server.span_id
    assert server.start_ns <= first.start_ns < first.end_ns <= second.start_ns
    assert second.end_ns <= server.end_ns
    # Each upstream received its own attempt's context, and the client's tracestate.
    assert parent_of(fake_openai.requests[0].headers) == ids(first)
    assert parent_of(second_openai.requests[0].headers) == ids(second)
    assert second_openai.requests[0].headers["tracestate"] == "vendor=opaque"

    assert server.name == "chat m"
    assert server.resource["service.name"] == "llm-gateway"
    assert server.status == "unset"
    assert server.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "b",  # openai_compatible: the provider's own name
        "gen_ai.request.model": "m",
        "gen_ai.response.model": "model-b",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.stream": False,
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 5,
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "llm_gateway.alias": "m",
        "llm_gateway.route": "b/model-b",
        "llm_gateway.attempts": 2,
        "llm_gateway.cache": "off",
        "llm_gateway.key": "static:dev",
        "llm_gateway.request_id": response.headers["x-request-id"],
    }
    assert first.name == "chat model-a" and second.name == "chat model-b"
    assert first.status == "error" and second.status == "unset"
    assert first.attributes["error.type"] == "500"
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["gen_ai.provider.name"] == "a"
    assert first.attributes["gen_ai.request.model"] == "model-a"
    assert first.attributes["llm_gateway.route"] == "a/model-a"
    assert first.attributes["server.address"] == "127.0.0.1"
    assert first.attributes["server.port"] == fake_openai.port
    assert "gen_ai.usage.input_tokens" not in first.attributes
    assert second.attributes["gen_ai.usage.input_tokens"] == 11
    assert second.attributes["gen_ai.usage.output_tokens"] == 5
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["gen_ai.request.max_tokens"] == 64
    assert "error.type" not in second.attributes
    assert_nothing_secret(collector.spans)


async def test_a_stream_and_its_answering_attempt_end_with_the_stream(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, collector: Collector
) -> None:
    fake_openai.enqueue(sse_reply(fake_openai, stream_events(["a", "b", "c"], pause=0.05)))
    gw = await gateway_factory(
        gateway_toml(
            provider("a", fake_openai.url), alias("m", ("a", "model-a")), tracing(collector)
        )
    )
    response = await post(gw, {"stream": True})
    assert response.status_code == 200 and "[DONE]" in response.text
    await gw.stop()

    (server,) = collector.of_kind("server")
    (attempt,) = collector.of_kind("client")
    assert server.trace_id == attempt.trace_id and server.parent_id == ""  # a new trace
    assert attempt.parent_id == server.span_id
    assert attempt.end_ns - attempt.start_ns >= 150_000_000  # the whole upstream stream
    assert server.attributes["gen_ai.request.stream"] is True
    assert server.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert server.attributes["gen_ai.usage.output_tokens"] == 3
    assert attempt.attributes["gen_ai.usage.output_tokens"] == 3
    assert parent_of(fake_openai.requests[0].headers) == ids(attempt)
    assert_nothing_secret(collector.spans)


async def test_every_route_failing_is_an_error_span_and_a_client_error_is_not(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    second_openai: FakeOpenAI,
    collector: Collector,
) -> None:
    fake_openai.enqueue(json_reply({"error": {"message": "down"}}, status=503))
    second_openai.enqueue(reset())
    gw = await gateway_factory(
        two_routes(fake_openai, second_openai, tracing(collector), attempts=0)
    )
    assert (await post(gw, {})).status_code == 502
    async with gw.http() as http:
        refused = await http.post("/v1/chat/completions", json={}, headers={"Authorization": "x"})
    assert refused.status_code == 401
    await gw.stop()

    failed, unauthenticated = collector.of_kind("server")
    assert failed.status == "error"
    assert failed.attributes["http.response.status_code"] == 502
    assert failed.attributes["error.type"] == "api_error"
    assert failed.attributes["llm_gateway.attempts"] == 2
    attempts = collector.of_kind("client")
    assert [a.attributes["error.type"] for a in attempts] == ["503", "UpstreamConnectError"]
    assert all(a.status == "error" and a.parent_id == failed.span_id for a in attempts)
    # A client's own mistake is not the gateway failing: the status stays unset.
    assert unauthenticated.name == "chat"  # no model was resolved
    assert unauthenticated.status == "unset"
    assert unauthenticated.attributes["error.type"] == "authentication_error"
    assert unauthenticated.attributes["http.response.status_code"] == 401


async def test_a_route_skipped_before_sending_has_no_span(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    collector: Collector,
) -> None:
    """Claude returns one choice only: with n=2 its route is skipped, never called."""
    gw = await gateway_factory(
        gateway_toml(
            provider("claude", fake_anthropic.url, kind="anthropic", api_key_env="A_KEY"),
            provider("backup", fake_openai.url, kind="openai", api_key_env="O_KEY"),
            alias("m", ("claude", "claude-sonnet-4-5"), ("backup", "gpt-4o-mini")),
            tracing(collector),
        ),
        env={"A_KEY": "sk-ant-secret-key", "O_KEY": "sk-openai-secret-key"},
    )
    assert (await post(gw, {"n": 2})).status_code == 200
    await gw.stop()

    (server,) = collector.of_kind("server")
    (attempt,) = collector.of_kind("client")
    assert fake_anthropic.requests == []
    assert attempt.attributes["gen_ai.provider.name"] == "openai"
    assert attempt.attributes["gen_ai.request.choice.count"] == 2
    assert server.attributes["llm_gateway.skipped_routes"] == 1
    assert server.attributes["gen_ai.provider.name"] == "openai"
    assert_nothing_secret(collector.spans, "sk-ant-secret-key", "sk-openai-secret-key")


async def test_count_tokens_asks_claude_under_an_attempt_span(
    gateway_factory: GatewayFactory, fake_anthropic: FakeAnthropic, collector: Collector
) -> None:
    gw = await gateway_factory(
        gateway_toml(
            provider("claude", fake_anthropic.url, kind="anthropic", api_key_env="A_KEY"),
            alias("m", ("claude", "claude-sonnet-4-5")),
            tracing(collector),
        ),
        env={"A_KEY": "sk-ant-x"},
    )
    async with gw.anthropic() as client:
        counted = await client.messages.count_tokens(
            model="m", messages=[{"role": "user", "content": PROMPT}]
        )
    assert counted.input_tokens > 0
    await gw.stop()

    (server,) = collector.of_kind("server")
    (attempt,) = collector.of_kind("client")
    assert server.name == "count_tokens m"
    assert attempt.name == "count_tokens claude-sonnet-4-5"
    assert attempt.attributes["gen_ai.provider.name"] == "anthropic"
    assert attempt.parent_id == server.span_id
    assert parent_of(fake_anthropic.requests[0].headers) == ids(attempt)


async def test_the_mock_provider_and_the_export_headers(
    gateway_factory: GatewayFactory, collector: Collector
) -> None:
    toml = gateway_toml(
        MOCK,
        alias("m", ("demo", "echo")),
        tracing(collector, headers_env="OTLP_HEADERS", service_name="gw-test"),
    )
    gw = await gateway_factory(toml, env={"OTLP_HEADERS": "authorization=Bearer%20otlp-token"})
    assert (await post(gw, {})).status_code == 200
    await gw.stop()

    (server,) = collector.of_kind("server")
    (attempt,) = collector.of_kind("client")
    assert attempt.parent_id == server.span_id
    assert attempt.attributes["gen_ai.provider.name"] == "demo"
    assert "server.address" not in attempt.attributes  # answered in-process
    assert server.resource["service.name"] == "gw-test"
    assert collector.exports[0]["authorization"] == "Bearer otlp-token"
    assert_nothing_secret(collector.spans, "otlp-token")


async def test_an_unsampled_client_trace_is_propagated_but_not_recorded(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, collector: Collector
) -> None:
    gw = await gateway_factory(
        gateway_toml(
            provider("a", fake_openai.url), alias("m", ("a", "model-a")), tracing(collector)
        )
    )
    await post(gw, {}, {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-00"})
    await gw.stop()

    assert collector.spans == []
    parent, sampled = parent_of(fake_openai.requests[0].headers)
    assert parent.startswith(f"{TRACE_ID}-") and not sampled
    assert CLIENT_SPAN not in parent  # the gateway's attempt is the upstream's parent


async def test_a_zero_sample_ratio_records_no_new_trace(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, collector: Collector
) -> None:
    gw = await gateway_factory(
        gateway_toml(
            provider("a", fake_openai.url),
            alias("m", ("a", "model-a")),
            tracing(collector, sample_ratio=0.0),
        )
    )
    await post(gw, {})  # starts a trace: not sampled
    await post(gw, {}, {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})  # the client's
    await gw.stop()

    assert {span.trace_id for span in collector.spans} == {TRACE_ID}
    assert len(collector.spans) == 2
    assert parent_of(fake_openai.requests[0].headers)[1] is False


async def test_with_tracing_off_nothing_is_exported_or_forwarded(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, collector: Collector
) -> None:
    off = tracing(collector).replace("enabled = true", "enabled = false")
    gw = await gateway_factory(
        gateway_toml(provider("a", fake_openai.url), alias("m", ("a", "model-a")), off)
    )
    response = await post(
        gw, {}, {"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "tracestate": "vendor=x"}
    )
    assert response.status_code == 200
    await gw.stop()

    assert collector.exports == []
    sent = fake_openai.requests[0].headers
    assert "traceparent" not in sent and "tracestate" not in sent


def assert_nothing_secret(spans: list[CollectedSpan], *secrets: str) -> None:
    """No prompt, no answer, no key in any attribute."""
    text = repr([(span.name, span.attributes, span.resource) for span in spans])
    for secret in (PROMPT, KEY, "echo:", *secrets):
        assert secret not in text
    assert "authorization" not in text.lower()
