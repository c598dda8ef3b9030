"""Rate limits, budgets and the gateway's output cap hold on /v1/messages and
/v1/responses as on chat completions, and their errors speak each API's shape."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.dialects.conftest import ENV, routes_toml
from tests.support.fake_upstream import json_reply
from tests.support.gateway import RunningGateway

ADMIN = "llmg_admin_for_dialect_limits"


async def start(gateway_factory: GatewayFactory, fakes: dict[str, Any]) -> RunningGateway:
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    admin = f'[[keys]]\nname = "ops"\nkey_sha256 = "{digest}"\nadmin = true\n'
    return await gateway_factory(routes_toml(fakes, admin), env=ENV)


async def user_key(gw: RunningGateway, name: str, user: dict[str, Any], key: dict[str, Any]) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=gw.url) as http:
        created = await http.post("/api/users", headers=admin, json={"name": name, **user})
        assert created.status_code == 201, created.text
        made = await http.post("/api/keys", headers=admin, json={"user": name, "name": "k", **key})
        assert made.status_code == 201, made.text
    await asyncio.sleep(0.7)  # the key table's refresh
    return str(made.json()["secret"])


async def test_rate_limits_speak_each_apis_shape(
    gateway_factory: GatewayFactory, fakes: dict[str, Any]
) -> None:
    gw = await start(gateway_factory, fakes)
    secret = await user_key(gw, "team", {}, {"rpm": 1})
    hello: Any = [{"role": "user", "content": "hi"}]
    async with gw.anthropic(key=secret) as claude_client:
        await claude_client.messages.create(model="gem", max_tokens=16, messages=hello)
        with pytest.raises(anthropic.RateLimitError) as messages_limited:
            await claude_client.messages.create(model="gem", max_tokens=16, messages=hello)
    async with gw.openai(key=secret) as openai_client:
        with pytest.raises(openai.RateLimitError) as responses_limited:
            await openai_client.responses.create(model="gem", input="hi")
    assert messages_limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(messages_limited.value.response.headers["retry-after"]) >= 1
    assert responses_limited.value.code == "rate_limit_exceeded"
    assert len(fakes["gem"].requests) == 1  # refused requests never reached a provider


async def test_counting_tokens_is_rate_limited_but_never_trips_a_circuit(
    gateway_factory: GatewayFactory, fakes: dict[str, Any]
) -> None:
    gw = await start(gateway_factory, fakes)
    overloaded = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    fakes["claude"].enqueue(*[json_reply(overloaded, status=429) for _ in range(8)])
    hello: Any = [{"role": "user", "content": "hi"}]
    async with gw.anthropic() as client:
        for _ in range(8):  # Claude refuses each count: the estimate answers instead
            raw = await client.messages.with_raw_response.count_tokens(
                model="claude-then-gpt", messages=hello
            )
            assert raw.headers["x-gateway-token-count"] == "estimate"
        answer = await client.messages.with_raw_response.create(
            model="claude-then-gpt", max_tokens=16, messages=hello
        )
    assert answer.headers["x-gateway-provider"] == "anthropic"  # its circuit stayed closed
    secret = await user_key(gw, "team", {}, {"rpm": 1})
    async with gw.anthropic(key=secret) as client:
        await client.messages.count_tokens(model="gem", messages=hello)
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.count_tokens(model="gem", messages=hello)


def spent_nano(db: str, owner: str) -> int:
    with sqlite3.connect(db) as conn:
        (total,) = conn.execute(
            "SELECT COALESCE(SUM(cost_nano), 0) FROM requests WHERE owner = ?", (owner,)
        ).fetchone()
    return int(total)


@pytest.mark.parametrize("api", ["messages", "responses"])
async def test_a_budget_is_never_overspent(
    gateway_factory: GatewayFactory, fakes: dict[str, Any], api: str
) -> None:
    gw = await start(gateway_factory, fakes)
    # A handful of small answers of Claude Sonnet; for the Responses API, dozens of GPT-4.1
    # mini's, until what is left is too little for its minimum cap and Claude serves.
    budget_usd = "0.001" if api == "messages" else "0.0006"
    budget_nano = int(float(budget_usd) * 1e9)
    secret = await user_key(gw, "team", {"monthly_budget_usd": budget_usd}, {})
    refusal: Any = None
    answered = 0
    served_by: set[str] = set()
    async with gw.anthropic(key=secret) as claude_client, gw.openai(key=secret) as oai:
        for _ in range(150):
            try:
                if api == "messages":  # max_tokens is required: the budget must cover it
                    await claude_client.messages.create(
                        model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
                    )
                else:  # no cap asked for: the gateway sets one the budget covers
                    raw = await oai.responses.with_raw_response.create(
                        model="gpt-then-claude", input="hi"
                    )
                    cap = int(raw.headers["x-gateway-max-tokens"])
                    provider = raw.headers["x-gateway-provider"]
                    served_by.add(provider)
                    if provider == "openai":
                        assert fakes["gpt"].requests[-1].body["max_output_tokens"] == cap >= 16
                    else:  # too little left for OpenAI's minimum of 16: the next route
                        assert raw.headers["x-gateway-skipped-routes"] == "openai/gpt-4.1-mini"
                        assert fakes["claude"].requests[-1].body["max_tokens"] == cap < 16
            except (anthropic.APIStatusError, openai.APIStatusError) as refused:
                refusal = refused
                break
            answered += 1
    if api == "responses":
        assert served_by == {"openai", "anthropic"}
    assert answered >= 1 and refusal is not None
    assert refusal.status_code == 402
    if api == "messages":
        assert refusal.body["error"]["type"] == "billing_error"
    else:
        assert refusal.body["code"] == "budget_exceeded"
    await gw.stop()  # the log is written in full
    assert spent_nano(gw.config.storage.database, "team") <= budget_nano
