"""`serve --workers N` as real processes: one port, one Redis, budgets and limits exact,
one metrics view, graceful signals, and a worker that dies replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.billing import BillingUpstream
from tests.support.configs import shared_state_toml
from tests.support.process import GatewayProcess

ADMIN = "llmg_admin_for_worker_tests"
BUDGET_NANO = 10_000_000


@pytest.fixture
async def billing() -> AsyncIterator[BillingUpstream]:
    fake = await BillingUpstream().start()
    yield fake
    await fake.stop()


def config(
    tmp_path: Path, upstream: str, redis_url: str | None, postgres_url: str | None = None
) -> Path:
    state = (
        f'[state]\nbackend = "redis"\nurl = "{redis_url}"\ntimeout_ms = 5000\n' if redis_url else ""
    )
    storage = (
        f'backend = "postgresql"\nurl = "{postgres_url}"'
        if postgres_url
        else f'database = "{tmp_path / "gateway.db"}"'
    )
    path = tmp_path / "gateway.toml"
    path.write_text(shared_state_toml(upstream, ADMIN, storage, state))
    return path


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


async def user_key(url: str, **settings: object) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url) as http:
        user = await http.post("/api/users", headers=admin, json={"name": "team", **settings})
        assert user.status_code == 201, user.text
        key = await http.post("/api/keys", headers=admin, json={"user": "team", "name": "k"})
        assert key.status_code == 201, key.text
        secret = str(key.json()["secret"])
        known = 0
        for _ in range(200):  # until both workers know it (tables refresh every 0.5 s)
            listed = await http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
            known = known + 1 if listed.status_code == 200 else 0
            if known == 10:
                return secret
            await asyncio.sleep(0.05)
    raise AssertionError("the workers never accepted the key")


def test_several_workers_on_the_memory_backend_are_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "http://127.0.0.1:9", None)
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--config", str(path), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert 'backend = "redis"' in done.stderr and "--allow-per-process-state" in done.stderr


async def test_two_workers_share_budgets_limits_and_metrics(
    billing: BillingUpstream, redis_url: str, tmp_path: Path
) -> None:
    gateway = GatewayProcess(
        config(tmp_path, billing.url, redis_url),
        tmp_path / "log.txt",
        {"K": "sk"},
        ("--workers", "2"),
    )
    try:
        await gateway.ready()
        assert len(children(gateway.process.pid)) == 2
        secret = await user_key(gateway.url, monthly_budget_usd="0.01")
        body = {
            "model": "mini",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": "hi"}],
        }
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            replies = await asyncio.gather(
                *(
                    http.post(
                        "/v1/chat/completions",
                        json=body,
                        headers={"Authorization": f"Bearer {secret}"},
                    )
                    for _ in range(200)
                )
            )
            assert {r.status_code for r in replies} <= {200, 402}
            answered = sum(r.status_code == 200 for r in replies)
            await asyncio.sleep(1.2)  # the log writers' counters reach the shared metrics
            metrics = (await http.get("/metrics")).text
        assert answered >= 1
        # Every worker's requests in one scrape, whichever worker answered it.
        total = sum(
            float(sample.rsplit(" ", 1)[1])
            for sample in metrics.splitlines()
            if sample.startswith("gateway_requests_total{") and 'api="chat"' in sample
        )
        assert total == 200
        os.kill(gateway.process.pid, signal.SIGHUP)  # every worker reloads
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            metrics = (await http.get("/metrics")).text
        assert 'gateway_config_reloads_total{result="ok"} 2.0' in metrics
    finally:
        assert gateway.stop() == 0  # SIGTERM: both drain, the supervisor exits cleanly
    with sqlite3.connect(tmp_path / "gateway.db") as conn:
        rows, spent = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_nano), 0) FROM requests WHERE api = 'chat'"
        ).fetchone()
    assert rows == 200  # no row lost on SIGTERM
    assert spent <= BUDGET_NANO


async def test_a_worker_that_dies_is_replaced(tmp_path: Path, redis_url: str) -> None:
    gateway = GatewayProcess(
        config(tmp_path, "http://127.0.0.1:9", redis_url),
        tmp_path / "log.txt",
        {"K": "sk"},
        ("--workers", "2"),
    )
    try:
        await gateway.ready()
        first = children(gateway.process.pid)
        os.kill(first[0], signal.SIGKILL)
        for _ in range(100):
            now = children(gateway.process.pid)
            if len(now) == 2 and first[0] not in now:
                break
            await asyncio.sleep(0.05)
        assert len(now) == 2 and first[0] not in now
        await gateway.ready()
    finally:
        assert gateway.stop() == 0
    assert "worker_died" in (tmp_path / "log.txt").read_text()


async def test_two_workers_on_postgresql_lose_no_answered_row_on_sigterm(
    billing: BillingUpstream, redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    """SIGTERM in the middle of a load: every request that got an answer has its row."""
    gateway = GatewayProcess(
        config(tmp_path, billing.url, redis_url, postgres_url),
        tmp_path / "log.txt",
        {"K": "sk"},
        ("--workers", "2"),
    )
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    answered: list[str] = []
    try:
        await gateway.ready()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:

            async def one() -> None:
                try:
                    reply = await http.post("/v1/chat/completions", json=body, headers=headers)
                except httpx.TransportError:
                    return  # refused once the workers stopped accepting: never answered
                answered.append(reply.headers["x-request-id"])

            load = [asyncio.create_task(one()) for _ in range(400)]
            while len(answered) < 100:
                await asyncio.sleep(0.01)
            gateway.terminate()
            await asyncio.gather(*load)
    finally:
        assert gateway.stop() == 0
    conn = await asyncpg.connect(postgres_url)
    try:
        stored = {r[0] for r in await conn.fetch("SELECT request_id FROM requests")}
        hours = await conn.fetchval("SELECT SUM(requests) FROM usage_hourly")
    finally:
        await conn.close()
    assert len(answered) >= 100
    assert set(answered) <= stored
    assert hours == len(stored)  # the roll-ups count exactly the rows written
