"""Usage analytics over real logged requests, and credentials over HTTP (SSRF refused)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from proxy.api.usage import percentile
from tests.conftest import GatewayFactory
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import RunningGateway

ADMIN = "llmg_admin_key_for_usage_tests"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
MASTER = Fernet.generate_key().decode()


@pytest.fixture
async def gw(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Any
) -> RunningGateway:
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    return await gateway_factory(
        f"""
[server]
host = "127.0.0.1"
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
[providers.up]
type = "openai"
base_url = "{fake_openai.url}/v1"
api_key_env = "UP_KEY"
[providers.demo]
type = "mock"
[[models]]
alias = "m"
routes = [{{ provider = "up", model = "gpt-4o-mini" }}]
[[models]]
alias = "free"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{tmp_path / "u.db"}"
flush_interval_ms = 10
""",
        env={"UP_KEY": "sk-gw", "GATEWAY_MASTER_KEY": MASTER},
    )


async def api(
    gw: RunningGateway, method: str, path: str, auth: dict[str, str], **kwargs: Any
) -> httpx.Response:
    async with gw.http() as http:
        return await http.request(method, path, headers=auth, **kwargs)


async def user_key(gw: RunningGateway, user: str) -> dict[str, str]:
    await api(gw, "POST", "/api/users", ADMIN_AUTH, json={"name": user})
    key = (await api(gw, "POST", "/api/keys", ADMIN_AUTH, json={"user": user, "name": "k"})).json()
    return {"Authorization": f"Bearer {key['secret']}"}


async def test_summary_requests_and_charts(gw: RunningGateway) -> None:
    alice, bob = await user_key(gw, "alice"), await user_key(gw, "bob")
    await asyncio.sleep(0.7)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    for auth, model, count in ((alice, "m", 3), (alice, "free", 2), (bob, "m", 1)):
        for _ in range(count):
            assert (
                await api(gw, "POST", "/v1/chat/completions", auth, json={**body, "model": model})
            ).status_code == 200
    await api(gw, "POST", "/v1/chat/completions", alice, json={"model": "nope", **body})
    await asyncio.sleep(0.3)

    mine = (await api(gw, "GET", "/api/usage/summary", alice)).json()
    assert mine["requests"] == 6 and mine["errors"] == 1
    assert mine["by_model"]["m"]["requests"] == 3
    assert mine["cost_usd"] == "0.00000855"  # 3 x (7 x $0.15 + 3 x $0.60) per 1M
    assert mine["latency_ms"]["p50"] is not None
    everyone = (await api(gw, "GET", "/api/usage/summary", ADMIN_AUTH)).json()
    assert everyone["requests"] == 7
    assert (await api(gw, "GET", "/api/usage/summary?user=bob", alice)).status_code == 403

    first = (await api(gw, "GET", "/api/usage/requests?limit=4", alice)).json()
    assert len(first["data"]) == 4 and first["has_more"]
    rest = (
        await api(gw, "GET", f"/api/usage/requests?limit=4&cursor={first['next_cursor']}", alice)
    ).json()
    assert len(rest["data"]) == 2 and not rest["has_more"]
    ids = [r["request_id"] for r in first["data"] + rest["data"]]
    assert len(set(ids)) == 6
    times = [r["ts"] for r in first["data"] + rest["data"]]
    assert times == sorted(times, reverse=True)
    only_free = (await api(gw, "GET", "/api/usage/requests?alias=free", alice)).json()["data"]
    assert {r["alias"] for r in only_free} == {"free"} and len(only_free) == 2
    failed = (await api(gw, "GET", "/api/usage/requests?status=404", alice)).json()["data"]
    assert len(failed) == 1
    one = (await api(gw, "GET", f"/api/usage/requests/{ids[0]}", alice)).json()
    assert one["request_id"] == ids[0] and "failed_attempts" in one
    assert (await api(gw, "GET", f"/api/usage/requests/{ids[0]}", bob)).status_code == 404
    bad = await api(gw, "GET", "/api/usage/requests?cursor=!!", alice)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"

    for kind in ("cost", "tokens", "requests_by_model", "latency"):
        chart = (await api(gw, "GET", f"/api/usage/charts?type={kind}&bucket=day", alice)).json()
        assert chart["type"] == kind and chart["series"]
    by_model = (await api(gw, "GET", "/api/usage/charts?type=requests_by_model", alice)).json()
    assert {s["name"]: sum(p[1] for p in s["points"]) for s in by_model["series"]} == {
        "m": 3,
        "free": 2,
        "other": 1,
    }
    assert (await api(gw, "GET", "/api/usage/charts?type=pie", alice)).status_code == 400


def test_percentiles_from_histogram_buckets() -> None:
    # 10 requests <= 50 ms, 10 in (50, 100]: the median is the top of the first bucket.
    counts = [10, 10] + [0] * 9
    assert percentile(counts, 0.5) == 50.0
    assert percentile(counts, 0.75) == 75.0
    assert percentile([0] * 11, 0.5) is None


async def test_credentials_api_masks_tests_and_refuses_foreign_urls(
    gw: RunningGateway, fake_openai: FakeOpenAI
) -> None:
    alice = await user_key(gw, "alice")
    await asyncio.sleep(0.7)
    created = await api(
        gw,
        "POST",
        "/api/credentials",
        alice,
        json={"provider": "up", "api_key": "sk-alice-0123456789"},
    )
    assert created.status_code == 201
    credential = created.json()
    assert credential["masked"] == "sk-a...6789" and "sk-alice-0123456789" not in created.text
    listed = (await api(gw, "GET", "/api/credentials", alice)).json()["data"]
    assert [c["id"] for c in listed] == [credential["id"]]
    ssrf = await api(
        gw,
        "POST",
        "/api/credentials",
        alice,
        json={"provider": "up", "api_key": "x", "base_url": "http://10.0.0.1/"},
    )
    assert ssrf.status_code == 400 and ssrf.json()["error"]["param"] == "base_url"
    probe = await api(
        gw,
        "POST",
        f"/api/credentials/{credential['id']}/test",
        alice,
        json={"base_url": "http://169.254.169.254/"},
    )
    assert probe.status_code == 400
    tested = (await api(gw, "POST", f"/api/credentials/{credential['id']}/test", alice)).json()
    assert tested["ok"] is True
    assert fake_openai.requests[-1].headers["Authorization"] == "Bearer sk-alice-0123456789"
    bob = await user_key(gw, "bob")
    await asyncio.sleep(0.7)
    assert (await api(gw, "DELETE", f"/api/credentials/{credential['id']}", bob)).status_code == 404
    replaced = await api(
        gw,
        "PUT",
        f"/api/credentials/{credential['id']}",
        alice,
        json={"api_key": "sk-new-key-99999999"},
    )
    assert replaced.json()["masked"] == "sk-n...9999"
    gone = await api(gw, "DELETE", f"/api/credentials/{credential['id']}", alice)
    assert gone.status_code == 200
    actions = [
        a["action"] for a in (await api(gw, "GET", "/api/account/activity", alice)).json()["data"]
    ]
    assert actions[:3] == ["credential.deleted", "credential.updated", "credential.stored"]
