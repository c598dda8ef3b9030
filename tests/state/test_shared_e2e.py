"""Two gateway instances sharing one Redis and one database (a SQLite file, as on one VM,
or PostgreSQL, as across VMs): budgets, limits, the cache and keys hold across them as in
one process."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.support.billing import BillingUpstream
from tests.support.configs import shared_state_toml
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import RunningGateway
from tests.support.redis_server import RedisServer

ADMIN = "llmg_admin_for_shared_state"
BUDGET_NANO = 10_000_000  # $0.01


@pytest.fixture
async def billing() -> AsyncIterator[BillingUpstream]:
    fake = await BillingUpstream().start()
    yield fake
    await fake.stop()


@dataclass
class SharedDatabase:
    """The [storage] both instances use, and what the request log says was spent."""

    storage: str
    sqlite_path: Path | None = None
    postgres_url: str | None = None

    async def spent(self, owner: str) -> tuple[int, int]:
        sql = (
            "SELECT COALESCE(SUM(cost_nano), 0), SUM(CASE WHEN http_status = 200 THEN 1 END) "
            f"FROM requests WHERE owner = '{owner}'"
        )
        if self.postgres_url is not None:
            conn = await asyncpg.connect(self.postgres_url)
            try:
                total, answered = await conn.fetchrow(sql)
            finally:
                await conn.close()
        else:
            assert self.sqlite_path is not None
            with sqlite3.connect(self.sqlite_path) as lite:
                total, answered = lite.execute(sql).fetchone()
        return int(total), int(answered or 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> SharedDatabase:
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        return SharedDatabase(f'database = "{path}"', sqlite_path=path)
    url = request.getfixturevalue("postgres_url")
    return SharedDatabase(f'backend = "postgresql"\nurl = "{url}"', postgres_url=url)


def shared_toml(upstream_url: str, redis_url: str, db: SharedDatabase, extra: str = "") -> str:
    state = f'[state]\nbackend = "redis"\nurl = "{redis_url}"\n' + (
        extra or "timeout_ms = 5000  # a loaded CI machine is slow, not down"
    )
    return shared_state_toml(upstream_url, ADMIN, db.storage, state)


async def two(
    gateway_factory: GatewayFactory,
    upstream_url: str,
    redis_url: str,
    db: SharedDatabase,
    extra: str = "",
) -> tuple[RunningGateway, RunningGateway]:
    toml = shared_toml(upstream_url, redis_url, db, extra)
    env = {"K": "sk-upstream"}
    return await gateway_factory(toml, env=env), await gateway_factory(toml, env=env)


async def user_key(gw: RunningGateway, name: str, **settings: object) -> tuple[str, int]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with gw.http() as http:
        user = await http.post("/api/users", headers=admin, json={"name": name, **settings})
        assert user.status_code == 201, user.text
        created = await http.post("/api/keys", headers=admin, json={"user": name, "name": "k"})
        assert created.status_code == 201, created.text
    return str(created.json()["secret"]), int(created.json()["id"])


async def post(gw: RunningGateway, key: str, body: dict[str, object]) -> httpx.Response:
    async with gw.http() as http:
        return await http.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )


async def accepted(gw: RunningGateway, key: str) -> None:
    """Wait until the instance knows the key (its key table refreshes every 0.5 s)."""
    async with gw.http() as http:
        for _ in range(100):
            listed = await http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            if listed.status_code == 200:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the instance never accepted the key")


async def test_200_requests_over_two_instances_never_overspend(
    gateway_factory: GatewayFactory,
    billing: BillingUpstream,
    redis_url: str,
    shared_db: SharedDatabase,
) -> None:
    first, second = await two(gateway_factory, billing.url, redis_url, shared_db)
    secret, _ = await user_key(first, "team", monthly_budget_usd="0.01")
    await accepted(second, secret)
    body = {"model": "mini", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
    replies = await asyncio.gather(
        *(post((first, second)[i % 2], secret, body) for i in range(200))
    )
    statuses = {r.status_code for r in replies}
    assert statuses <= {200, 402}, statuses
    await first.stop()
    await second.stop()
    total, answered = await shared_db.spent("team")
    assert answered >= 1 and total <= BUDGET_NANO
    # Both instances answered some: the budget was shared, not split.
    assert {r.headers.get("x-gateway-provider") for r in replies if r.status_code == 200} == {
        "openai"
    }


async def test_rpm_over_two_instances(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    redis_url: str,
    shared_db: SharedDatabase,
) -> None:
    first, second = await two(gateway_factory, fake_openai.url, redis_url, shared_db)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    secret, key_id = await user_key(first, "team")
    async with first.http() as http:
        changed = await http.patch(f"/api/keys/{key_id}", headers=admin, json={"rpm": 10})
        assert changed.status_code == 200, changed.text
    async with second.http() as http:  # until the change reaches its key table
        for _ in range(100):
            seen = await http.get("/api/account", headers={"Authorization": f"Bearer {secret}"})
            if seen.status_code == 200 and seen.json()["key"]["rpm"] == 10:
                break
            await asyncio.sleep(0.05)
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
    replies = await asyncio.gather(*(post((first, second)[i % 2], secret, body) for i in range(40)))
    codes = [r.status_code for r in replies]
    assert codes.count(200) == 10 and codes.count(429) == 30
    limited = next(r for r in replies if r.status_code == 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_a_cached_answer_from_one_instance_is_served_by_the_other(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    redis_url: str,
    shared_db: SharedDatabase,
) -> None:
    cache = "[cache]\nenabled = true\n"
    first, second = await two(gateway_factory, fake_openai.url, redis_url, shared_db, cache)
    secret, _ = await user_key(first, "team")
    await accepted(second, secret)
    body = {"model": "mini", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}
    miss = await post(first, secret, body)
    hit = await post(second, secret, body)
    assert miss.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "HIT"
    assert hit.json()["choices"] == miss.json()["choices"]
    assert len(fake_openai.requests) == 1


async def test_a_key_revoked_on_one_instance_is_refused_by_the_other_within_a_second(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    redis_url: str,
    shared_db: SharedDatabase,
) -> None:
    first, second = await two(gateway_factory, fake_openai.url, redis_url, shared_db)
    secret, key_id = await user_key(first, "team")
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
    assert (await post(first, secret, body)).status_code == 200  # at once, where it was made
    await accepted(second, secret)
    async with first.http() as http:
        revoked = await http.delete(
            f"/api/keys/{key_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert revoked.status_code in (200, 204), revoked.text
    assert (await post(first, secret, body)).status_code == 401
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (await post(second, secret, body)).status_code != 401:
        assert loop.time() - started < 1.0, "the other instance still accepts the key"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("on_failure", ["closed", "local"])
async def test_redis_stopped_mid_load(
    gateway_factory: GatewayFactory,
    fake_openai: FakeOpenAI,
    redis_server: RedisServer,
    redis_url: str,
    shared_db: SharedDatabase,
    on_failure: str,
) -> None:
    extra = f'on_failure = "{on_failure}"\ntimeout_ms = 200\n'
    first, _ = await two(gateway_factory, fake_openai.url, redis_url, shared_db, extra)
    secret, _ = await user_key(first, "team", monthly_budget_usd="10")
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
    assert (await post(first, secret, body)).status_code == 200
    redis_server.stop()
    during = await asyncio.gather(*(post(first, secret, body) for _ in range(10)))
    if on_failure == "closed":
        assert {r.status_code for r in during} == {503}
        assert during[0].json()["error"]["code"] == "state_unavailable"
        assert during[0].headers["retry-after"] == "1"
    else:
        assert {r.status_code for r in during} == {200}
    async with first.http() as http:
        metrics = (await http.get("/metrics")).text
    assert "gateway_state_backend_up 0.0" in metrics
    redis_server.start()
    for _ in range(50):
        if (await post(first, secret, body)).status_code == 200:
            break
        await asyncio.sleep(0.1)
    async with first.http() as http:
        metrics = (await http.get("/metrics")).text
    assert "gateway_state_backend_up 1.0" in metrics
