"""The management API: scopes, users and keys, pricing arithmetic, budget, audit, OpenAPI."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import httpx
import pytest

from proxy.accounts.store import User
from proxy.api import ENDPOINTS, RELOAD
from proxy.api.budget import budget_view
from tests.conftest import GatewayFactory
from tests.support.gateway import KEY, RunningGateway

ADMIN = "llmg_admin_key_for_api_tests"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
DEV_AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def gw(gateway_factory: GatewayFactory, tmp_path: Any) -> RunningGateway:
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    return await gateway_factory(
        f"""
[server]
host = "127.0.0.1"
[[keys]]
name = "dev"
dev_only = true
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
[providers.oai]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "OAI_KEY"
[providers.demo]
type = "mock"
[[models]]
alias = "cheap"
routes = [{{ provider = "oai", model = "gpt-4o-mini" }}]
[[models]]
alias = "big"
routes = [{{ provider = "oai", model = "gpt-4o" }}, {{ provider = "demo", model = "echo" }}]
[[models]]
alias = "free"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{tmp_path / "api.db"}"
""",
        env={"OAI_KEY": "sk-never-shown"},
    )


async def call(
    gw: RunningGateway, method: str, path: str, auth: dict[str, str], **kwargs: Any
) -> httpx.Response:
    async with gw.http() as http:
        return await http.request(method, path, headers=auth, **kwargs)


async def test_scopes_admin_only_endpoints_are_403_for_user_keys(gw: RunningGateway) -> None:
    refused = await call(gw, "GET", "/api/users", DEV_AUTH)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert (await call(gw, "GET", "/api/users", {})).status_code == 401
    assert (await call(gw, "GET", "/api/users", ADMIN_AUTH)).status_code == 200


async def test_users_and_keys_lifecycle_with_pagination_and_audit(gw: RunningGateway) -> None:
    for i in range(3):
        created = await call(
            gw,
            "POST",
            "/api/users",
            ADMIN_AUTH,
            json={"name": f"u{i}", "monthly_budget_usd": 10 + i},
        )
        assert created.status_code == 201 and created.json()["monthly_budget_usd"] == str(10 + i)
    assert (
        await call(gw, "POST", "/api/users", ADMIN_AUTH, json={"name": "u0"})
    ).status_code == 400
    first = (await call(gw, "GET", "/api/users?per_page=2", ADMIN_AUTH)).json()
    second = (await call(gw, "GET", "/api/users?per_page=2&page=2", ADMIN_AUTH)).json()
    assert [u["name"] for u in first["data"]] == ["u0", "u1"] and first["has_more"]
    assert [u["name"] for u in second["data"]] == ["u2"] and not second["has_more"]
    assert (await call(gw, "GET", "/api/users?page=0", ADMIN_AUTH)).json()["error"][
        "param"
    ] == "page"
    assert (await call(gw, "GET", "/api/users?page=x", ADMIN_AUTH)).status_code == 400

    key = (
        await call(
            gw,
            "POST",
            "/api/keys",
            ADMIN_AUTH,
            json={"user": "u1", "name": "svc", "rpm": 5, "models": ["free"]},
        )
    ).json()
    secret = key.pop("secret")
    assert secret.startswith("llmg_") and key["state"] == "active" and "sha256" not in key
    listed = (await call(gw, "GET", "/api/keys?user=u1", ADMIN_AUTH)).json()["data"]
    assert [k["name"] for k in listed] == ["svc"] and secret not in str(listed)
    patched = await call(gw, "PATCH", f"/api/keys/{key['id']}", ADMIN_AUTH, json={"rpm": 9})
    assert patched.json()["rpm"] == 9
    budget = await call(gw, "PATCH", "/api/users/u1", ADMIN_AUTH, json={"monthly_budget_usd": 50})
    assert budget.json()["monthly_budget_usd"] == "50"

    # The user's own key sees its own account and activity, not others'.
    import asyncio

    await asyncio.sleep(0.7)
    own = {"Authorization": f"Bearer {secret}"}
    account = (await call(gw, "GET", "/api/account", own)).json()
    assert account["key"]["name"] == "u1/svc" and account["user"]["name"] == "u1"
    actions = [
        a["action"] for a in (await call(gw, "GET", "/api/account/activity", own)).json()["data"]
    ]
    assert actions == ["user.budget_changed", "key.updated", "key.created", "user.created"]
    everyone = (await call(gw, "GET", "/api/account/activity", ADMIN_AUTH)).json()
    assert everyone["total"] == 6 and all(a["actor"] == "ops" for a in everyone["data"])
    assert (await call(gw, "GET", "/api/budget?user=u0", own)).status_code == 403

    revoked = await call(gw, "DELETE", f"/api/keys/{key['id']}", ADMIN_AUTH)
    assert revoked.json()["state"] == "revoked"
    assert (await call(gw, "DELETE", "/api/keys/999", ADMIN_AUTH)).status_code == 404


async def test_providers_and_models(gw: RunningGateway) -> None:
    providers = (await call(gw, "GET", "/api/providers", DEV_AUTH)).json()["data"]
    oai = next(p for p in providers if p["name"] == "oai")
    assert oai["key_configured"] is True and oai["circuit_state"] == "closed"
    assert "sk-never-shown" not in str(providers)
    assert (await call(gw, "GET", "/api/providers/nope", DEV_AUTH)).status_code == 404
    by_price = (await call(gw, "GET", "/api/models?sort=price", DEV_AUTH)).json()["data"]
    assert [m["id"] for m in by_price] == ["free", "cheap", "big"]
    only_oai = (await call(gw, "GET", "/api/models?provider=oai", DEV_AUTH)).json()["data"]
    assert sorted(m["id"] for m in only_oai) == ["big", "cheap"]
    big = (await call(gw, "GET", "/api/models/big", DEV_AUTH)).json()
    assert big["routes"][0]["input_price"] == "2.50"
    assert (await call(gw, "GET", "/api/models?sort=size", DEV_AUTH)).json()["error"][
        "param"
    ] == "sort"


async def test_calculator_and_compare_by_hand(gw: RunningGateway) -> None:
    calc = (
        await call(
            gw,
            "GET",
            "/api/pricing/calculator?model=cheap&prompt_tokens=1000&completion_tokens=500",
            DEV_AUTH,
        )
    ).json()
    # 1000 x $0.15 + 500 x $0.60 per 1M tokens = $0.00045
    assert calc["cost_usd"] == "0.00045" and calc["cost_nano_usd"] == 450_000
    compared = (
        await call(
            gw, "GET", "/api/pricing/compare?prompt_tokens=1000&completion_tokens=500", DEV_AUTH
        )
    ).json()["data"]
    # big: 1000 x $2.50 + 500 x $10 = $0.0075; free: 0
    assert [(r["model"], r["cost_usd"]) for r in compared] == [
        ("free", "0"),
        ("cheap", "0.00045"),
        ("big", "0.0075"),
    ]
    missing = await call(gw, "GET", "/api/pricing/compare?prompt_tokens=1", DEV_AUTH)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "completion_tokens"
    table = (await call(gw, "GET", "/api/pricing", DEV_AUTH)).json()
    assert table["unit"] == "USD per 1M tokens" and table["table_updated"]


def test_budget_projection_arithmetic() -> None:
    user = User("u", monthly_budget_nano=100 * 10**9, alert_thresholds=None, created_at=0)
    now = dt.datetime(2026, 11, 11, tzinfo=dt.UTC).timestamp()  # 10 days into a 30-day month
    view = budget_view(user, spent=40 * 10**9, now=now, default=(0.5, 0.8, 1.0))
    assert view["spent_usd"] == "40" and view["remaining_usd"] == "60"
    assert view["percent_used"] == 40.0 and view["thresholds_crossed"] == []
    assert view["projected_month_end_usd"] == "120"  # $4/day x 30 days
    assert view["projected_over_budget"] is True


async def test_openapi_documents_every_endpoint(gw: RunningGateway) -> None:
    spec = (await call(gw, "GET", "/openapi.json", {})).json()
    assert spec["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    # Every /api/ endpoint, the reload one (served on its own) included.
    assert documented == {(e.method, e.path) for e in [*ENDPOINTS, RELOAD]}
    for operations in spec["paths"].values():
        for operation in operations.values():
            assert operation["summary"]
            assert all(p["schema"]["type"] for p in operation["parameters"])
            ok = next(iter(operation["responses"].values()))
            assert ok["content"]["application/json"]["example"]
    page = await call(gw, "GET", "/docs", {})
    assert page.status_code == 200 and "/api/pricing/compare" in page.text
