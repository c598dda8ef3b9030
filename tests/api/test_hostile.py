"""The management API under careless and hostile callers: concurrent writes, odd bodies,
huge bodies. Every answer is a result or an envelope, never a 500, and nothing is lost."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import GatewayFactory
from tests.support.gateway import RunningGateway

ADMIN = "llmg_admin_key_for_hostile_tests"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
CONCURRENT = 50


@pytest.fixture
async def gw(gateway_factory: GatewayFactory, tmp_path: Path) -> RunningGateway:
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    return await gateway_factory(
        f"""
[server]
host = "127.0.0.1"
max_request_body_mb = 1
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
[providers.demo]
type = "mock"
[[models]]
alias = "fast"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{tmp_path / "api.db"}"
""",
        env={"GATEWAY_MASTER_KEY": Fernet.generate_key().decode()},
    )


async def send(http: httpx.AsyncClient, method: str, path: str, body: Any = None) -> httpx.Response:
    return await http.request(method, path, headers=ADMIN_AUTH, json=body)


async def burst(
    http: httpx.AsyncClient, requests: list[tuple[str, str, Any]]
) -> list[httpx.Response]:
    replies = await asyncio.gather(*(send(http, m, p, b) for m, p, b in requests))
    statuses = sorted({r.status_code for r in replies})
    assert statuses in ([200], [201]), [r.text for r in replies if r.status_code >= 300][:3]
    return list(replies)


async def test_fifty_concurrent_writes_of_every_kind_all_succeed(gw: RunningGateway) -> None:
    n = CONCURRENT
    async with gw.http() as http:
        await burst(http, [("POST", "/api/users", {"name": f"u{i}"}) for i in range(n)])
        await burst(
            http,
            [("PATCH", f"/api/users/u{i}", {"monthly_budget_usd": i + 1}) for i in range(n)],
        )
        created = await burst(
            http, [("POST", "/api/keys", {"user": f"u{i}", "name": "k"}) for i in range(n)]
        )
        ids = [r.json()["id"] for r in created]
        await burst(http, [("PATCH", f"/api/keys/{i}", {"rpm": 10}) for i in ids])
        creds = await burst(
            http,
            [
                (
                    "POST",
                    "/api/credentials",
                    {"user": f"u{i}", "provider": "demo", "api_key": f"sk-{i:08d}"},
                )
                for i in range(n)
            ],
        )
        cred_ids = [r.json()["id"] for r in creds]
        await burst(
            http, [("PUT", f"/api/credentials/{i}", {"api_key": "sk-newer-key"}) for i in cred_ids]
        )
        await burst(http, [("DELETE", f"/api/credentials/{i}", None) for i in cred_ids])
        await burst(http, [("DELETE", f"/api/keys/{i}", None) for i in ids])
        users = (await send(http, "GET", "/api/users?per_page=200")).json()
        keys = (await send(http, "GET", "/api/keys?per_page=200")).json()["data"]
        actions: list[str] = []
        for page in (1, 2, 3):
            audit = await send(http, "GET", f"/api/account/activity?per_page=200&page={page}")
            actions += [entry["action"] for entry in audit.json()["data"]]
    assert users["total"] == n
    assert {u["monthly_budget_usd"] for u in users["data"]} == {str(i + 1) for i in range(n)}
    assert len(keys) == n and all(k["rpm"] == 10 and k["state"] == "revoked" for k in keys)
    for action in (
        "user.created",
        "user.budget_changed",
        "key.created",
        "key.updated",
        "key.revoked",
        "credential.stored",
        "credential.updated",
        "credential.deleted",
    ):
        assert actions.count(action) == n, action


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"models": "fast"}, "models"),
        ({"models": 5}, "models"),
        ({"models": [[1]]}, "models"),
        ({"models": [""]}, "models"),
        ({"rpm": 0}, "rpm"),
        ({"tpm": -3}, "tpm"),
        ({"rpm": True}, "rpm"),
        ({"rpm": 2**70}, "rpm"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"admin": "yes"}, "admin"),
        ({"monthly_budget_usd": "NaN"}, "monthly_budget_usd"),
    ],
)
async def test_key_changes_are_validated_like_creation(
    gw: RunningGateway, change: dict[str, Any], param: str
) -> None:
    async with gw.http() as http:
        await send(http, "POST", "/api/users", {"name": "team"})
        key = (await send(http, "POST", "/api/keys", {"user": "team", "name": "k"})).json()
        refused_update = await send(http, "PATCH", f"/api/keys/{key['id']}", change)
        refused_create = await send(
            http, "POST", "/api/keys", {"user": "team", "name": "k2", **change}
        )
        unchanged = (await send(http, "GET", "/api/keys")).json()["data"][0]
    for refused in (refused_update, refused_create):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == param
    assert unchanged["models"] is None and unchanged["rpm"] is None and not unchanged["admin"]


async def test_an_unreadable_key_row_never_freezes_the_key_table(
    gw: RunningGateway, tmp_path: Path
) -> None:
    """A row written around the API (a bad migration, a manual edit) is skipped, not fatal:
    revocations and new keys keep taking effect."""
    async with gw.http() as http:
        await send(http, "POST", "/api/users", {"name": "team"})
        first = (await send(http, "POST", "/api/keys", {"user": "team", "name": "a"})).json()
        await gw.gateway.services.db.conn.execute(
            "UPDATE api_keys SET models = '[[1]]' WHERE id = ?", (first["id"],)
        )
        revoked = (await send(http, "POST", "/api/keys", {"user": "team", "name": "b"})).json()
        await send(http, "DELETE", f"/api/keys/{revoked['id']}")
        fresh = (await send(http, "POST", "/api/keys", {"user": "team", "name": "c"})).json()
        await asyncio.sleep(1.0)  # the key table's refresh interval, twice over

        async def status(secret: str) -> int:
            reply = await http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
            return reply.status_code

        assert await status(fresh["secret"]) == 200
        assert await status(revoked["secret"]) == 401
        assert await status(first["secret"]) == 401  # unreadable: refused, not crashing


async def test_a_reused_client_request_id_loses_no_row_and_reveals_nothing(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two users send the same X-Request-Id with debug logging on: both rows are kept, and
    neither can read the other's request or bodies by that id."""
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    gw = await gateway_factory(
        f"""
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
[providers.demo]
type = "mock"
[[models]]
alias = "fast"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{tmp_path / "ids.db"}"
flush_interval_ms = 10
[debug_log]
enabled = true
"""
    )
    async with gw.http() as http:
        secrets = {}
        for user in ("alice", "mallory"):
            await send(http, "POST", "/api/users", {"name": user})
            key = await send(http, "POST", "/api/keys", {"user": user, "name": "k"})
            secrets[user] = key.json()["secret"]
        await asyncio.sleep(0.7)  # the key table's refresh
        answered = []
        for user, text in (("alice", "alice's secret plan"), ("mallory", "hello")):
            reply = await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {secrets[user]}", "X-Request-Id": "same-id"},
                json={"model": "fast", "messages": [{"role": "user", "content": text}]},
            )
            assert reply.status_code == 200
            answered.append(reply.headers["x-request-id"])
        await asyncio.sleep(0.3)
        mallory = {"Authorization": f"Bearer {secrets['mallory']}"}
        found = await http.get("/api/usage/requests?client_request_id=same-id", headers=mallory)
        peek = await http.get(f"/api/usage/requests/{answered[0]}", headers=mallory)
        by_client_id = await http.get("/api/usage/requests/same-id", headers=mallory)
        everyone = await send(http, "GET", "/api/usage/requests?client_request_id=same-id")
    assert answered[0] != answered[1]
    assert [r["request_id"] for r in found.json()["data"]] == [answered[1]]
    assert peek.status_code == 404 and by_client_id.status_code == 404
    assert "alice's secret plan" not in peek.text + by_client_id.text + found.text
    assert sorted(r["request_id"] for r in everyone.json()["data"]) == sorted(answered)


async def test_keys_whose_display_names_coincide_never_share_limits_or_spend(
    gw: RunningGateway,
) -> None:
    """User "t" with key "x/k" and user "t/x" with key "k" are both shown as "t/x/k"."""
    async with gw.http() as http:
        secrets = []
        for user, name in (("t", "x/k"), ("t/x", "k")):
            await send(http, "POST", "/api/users", {"name": user})
            key = await send(http, "POST", "/api/keys", {"user": user, "name": name, "rpm": 1})
            secrets.append(key.json()["secret"])
        await asyncio.sleep(0.7)
        statuses = []
        for secret in secrets:
            reply = await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {secret}"},
                json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
            )
            statuses.append(reply.status_code)
            account = await http.get("/api/account", headers={"Authorization": f"Bearer {secret}"})
            assert account.json()["key"]["name"] == "t/x/k"
    assert statuses == [200, 200]  # each key has its own one request per minute


async def test_each_refusal_under_api_names_its_own_code(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    gw = await gateway_factory(
        f"""
[[keys]]
name = "dev"
dev_only = true
[[keys]]
name = "ops"
key_sha256 = "{digest}"
admin = true
[providers.demo]
type = "mock"
[[models]]
alias = "fast"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{tmp_path / "codes.db"}"
"""
    )
    async with gw.http() as http:
        await send(http, "POST", "/api/users", {"name": "team"})
        secret = (await send(http, "POST", "/api/keys", {"user": "team", "name": "k"})).json()
        await asyncio.sleep(0.7)
        user = {"Authorization": f"Bearer {secret['secret']}"}
        dev = {"Authorization": "Bearer llmg_dev_only_insecure_local_key"}
        codes = [
            (await http.get("/api/users", headers=user)).json()["error"]["code"],
            (await http.get("/api/usage/summary", headers=dev)).json()["error"]["code"],
            (await http.get("/api/usage/summary?user=other", headers=user)).json()["error"]["code"],
        ]
    assert codes == ["admin_required", "no_user", "other_user"]
