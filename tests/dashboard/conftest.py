"""A gateway with seeded traffic for the dashboard: an admin static key, a user with a
budget and a key of their own, successful and failing requests, and one whose client
headers carry markup (the page must show it as text)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import GatewayFactory
from tests.support.configs import admin_key, alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import RunningGateway

ADMIN = "llmg_admin_key_for_dashboard_tests"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


@dataclass
class Seeded:
    gateway: RunningGateway
    user_key: str
    requests_ok: int
    requests_failed: int


async def seed(gw: RunningGateway) -> Seeded:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with gw.http() as http:
        user = await http.post(
            "/api/users", headers=admin, json={"name": "team", "monthly_budget_usd": "5"}
        )
        assert user.status_code == 201, user.text
        key = await http.post("/api/keys", headers=admin, json={"user": "team", "name": "ci"})
        assert key.status_code == 201, key.text
        secret = str(key.json()["secret"])
        auth = {"Authorization": f"Bearer {secret}"}
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        for i in range(6):
            reply = await http.post(
                "/v1/chat/completions",
                headers={**auth, "x-request-id": f"client-{i}", "user-agent": HOSTILE},
                json={**body, "user": f"end-user-{i % 2}"},
            )
            assert reply.status_code == 200, reply.text
        failed = await http.post(
            "/v1/chat/completions", headers=auth, json={**body, "model": "broken"}
        )
        assert failed.status_code == 502, failed.text
        for _ in range(100):  # until the log writer has written all seven rows
            logged = await http.get("/api/usage/requests", headers=admin)
            if len(logged.json()["data"]) == 7:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the request log never showed the seeded requests")
    return Seeded(gw, secret, 6, 1)


@pytest.fixture
async def seeded(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[Seeded]:
    gw = await gateway_factory(
        gateway_toml(
            admin_key(ADMIN),
            provider("up", fake_openai.url, kind="openai", api_key_env="UP_KEY"),
            provider("down", "http://127.0.0.1:9", kind="openai", api_key_env="UP_KEY"),
            alias("m", ("up", "gpt-4o-mini")),
            alias("broken", ("down", "gpt-4o-mini")),
            f'[storage]\ndatabase = "{tmp_path / "dash.db"}"\nflush_interval_ms = 10\n',
            "[debug_log]\nenabled = true\n",
            attempts=0,
        ),
        env={"UP_KEY": "sk-dashboard-upstream"},
    )
    yield await seed(gw)
