"""Prometheus output after a scripted set of requests: names, labels, values, promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory
from tests.support.configs import MOCK, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_upstream import json_reply
from tests.support.gateway import KEY

AUTH = {"Authorization": f"Bearer {KEY}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scripted(gateway_factory: GatewayFactory, fake: FakeOpenAI, per_key: bool = False):  # type: ignore[no-untyped-def]
    metrics = "[metrics]\nper_key_labels = true\n" if per_key else ""
    gw = await gateway_factory(
        gateway_toml(
            provider("up", fake.url, kind="openai", api_key_env="UP_KEY"),
            MOCK,
            '[[models]]\nalias = "m"\nroutes = [{ provider = "up", model = "gpt-4o-mini" }, '
            '{ provider = "demo", model = "echo" }]\n',
            metrics,
            attempts=0,
        ),
        env={"UP_KEY": "sk-up"},
    )
    fake.enqueue(json_reply({"error": {"message": "x"}}, status=500))
    async with gw.http() as http:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(3):
            assert (
                await http.post("/v1/chat/completions", json=body, headers=AUTH)
            ).status_code == 200
        stream = {**body, "stream": True}
        assert (
            await http.post("/v1/chat/completions", json=stream, headers=AUTH)
        ).status_code == 200
        unknown = {**body, "model": "made-up-alias"}
        assert (
            await http.post("/v1/chat/completions", json=unknown, headers=AUTH)
        ).status_code == 404
        text = (await http.get("/metrics")).text
    return text


async def test_metric_values_after_scripted_requests(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    text = await scripted(gateway_factory, fake_openai)
    found = samples(text)
    ok = {"api": "chat", "alias": "m", "status_class": "2xx"}
    assert value(found, "gateway_requests_total", **ok, provider="up") == 3
    assert value(found, "gateway_requests_total", **ok, provider="demo") == 1
    assert (
        value(
            found,
            "gateway_requests_total",
            api="chat",
            alias="other",
            provider="none",
            status_class="4xx",
        )
        == 1
    )
    assert value(found, "gateway_fallbacks_total", alias="m") == 1
    assert value(found, "gateway_upstream_errors_total", provider="up", reason="http_5xx") == 1
    # Two plain answers (7 + 3 tokens) and one stream ("echo: hi": 7 + 2 tokens).
    assert value(found, "gateway_tokens_total", alias="m", provider="up", type="prompt") == 21
    assert value(found, "gateway_cost_usd_total", alias="m", provider="up") == pytest.approx(
        (2 * (7 * 0.15 + 3 * 0.6) + 7 * 0.15 + 2 * 0.6) / 1e6
    )
    assert value(found, "gateway_overhead_seconds_count") == 5
    attempts = "gateway_upstream_attempt_duration_seconds_count"
    assert value(found, attempts, provider="up", outcome="ok") == 3
    assert value(found, attempts, provider="up", outcome="error") == 1  # then the fallback
    assert value(found, attempts, provider="demo", outcome="ok") == 1
    assert value(found, "gateway_tokens_total", alias="m", provider="up", type="completion") == 8
    assert value(found, "gateway_time_to_first_token_seconds_count", alias="m", provider="up") == 1
    assert value(found, "gateway_circuit_state", provider="up") == 0
    assert value(found, "gateway_in_flight_requests") == 0
    assert ("gateway_log_rows_dropped_total", ()) in found
    assert "made-up-alias" not in text and KEY not in text
    assert 'key="' not in text


async def test_only_what_happened_is_exported(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    """A series is exported from its first count on, so one that never counted (at zero)
    would read as a fact: a cost of nothing, a first token that never came."""
    found = samples(await scripted(gateway_factory, fake_openai))
    refused = [
        name
        for name, labels in found
        if dict(labels).get("alias") == "other"
        and name.startswith(("gateway_tokens", "gateway_cost", "gateway_time_to_first_token"))
    ]
    assert refused == []  # the 404 counts as a request, and nothing else
    # No prompt cache was read, and the mock route is free: nothing to add to either.
    assert not [
        n for n, labels in found if n == "gateway_tokens_total" and ("type", "cached") in labels
    ]
    assert not [
        n for n, labels in found if n == "gateway_cost_usd_total" and ("provider", "demo") in labels
    ]
    # Only the stream had a first token, on the first route.
    assert {
        dict(labels)["provider"]
        for name, labels in found
        if name == "gateway_time_to_first_token_seconds_count"
    } == {"up"}


async def test_per_key_labels_are_opt_in(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    text = await scripted(gateway_factory, fake_openai, per_key=True)
    assert 'key="dev"' in text


async def test_promtool_accepts_the_output(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make test` (Debian package prometheus)"
    text = await scripted(gateway_factory, fake_openai)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_separate_metrics_listener(gateway_factory: GatewayFactory) -> None:
    import httpx

    from tests.support.configs import alias
    from tests.support.process import free_port

    port = free_port()
    gw = await gateway_factory(
        gateway_toml(MOCK, alias("m", ("demo", "echo")), f"[metrics]\nport = {port}\n")
    )
    async with gw.http() as http:
        assert (await http.get("/metrics")).status_code == 404
        await http.post(
            "/v1/chat/completions",
            headers=AUTH,
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert (
        'gateway_requests_total{alias="m",api="chat",provider="demo",status_class="2xx"} 1.0'
        in text
    )


@pytest.mark.parametrize("separate", [False, True])
async def test_a_metrics_bearer_token_guards_the_scrape(
    gateway_factory: GatewayFactory, separate: bool
) -> None:
    import httpx

    from tests.support.configs import alias
    from tests.support.process import free_port

    port = free_port()
    listener = f'port = {port}\nhost = "127.0.0.1"\n' if separate else ""
    gw = await gateway_factory(
        gateway_toml(
            MOCK,
            alias("m", ("demo", "echo")),
            f'[metrics]\n{listener}bearer_token_env = "SCRAPE"\n',
        ),
        env={"SCRAPE": "scrape-token-0123"},
    )
    url = f"http://127.0.0.1:{port}/metrics" if separate else f"{gw.url}/metrics"
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(url)
        wrong = await http.get(url, headers={"Authorization": "Bearer nope"})
        right = await http.get(url, headers={"Authorization": "Bearer scrape-token-0123"})
        docs = await http.get(f"{gw.url}/docs")
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert right.status_code == 200 and "gateway_in_flight_requests" in right.text
    assert docs.status_code == 200  # docs stay on unless turned off


async def test_docs_can_be_turned_off(gateway_factory: GatewayFactory) -> None:
    from tests.support.configs import alias

    gw = await gateway_factory(
        gateway_toml(MOCK, alias("m", ("demo", "echo"))).replace(
            "[server]\n", "[server]\ndocs = false\n"
        )
    )
    async with gw.http() as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/openapi.json")).status_code == 404
