"""Database keys, allow-lists, budgets, rate limits and alerts through the running gateway."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from aiohttp import web

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, completion
from tests.support.fake_upstream import FakeUpstream, json_reply
from tests.support.gateway import RunningGateway

ROOT = Path(__file__).parent.parent.parent
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}


async def cli(config: Path, *args: str) -> str:
    # In a thread: the gateway under test shares this event loop and must keep running
    # (a blocked loop would hold its log writer's transaction open).
    return await asyncio.to_thread(_cli, config, *args)


def _cli(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def secret_of(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("secret:"))


def toml(fake: FakeOpenAI, db: Path, extra: str = "") -> str:
    return gateway_toml(
        provider("up", fake.url, kind="openai", api_key_env="UP_KEY"),
        alias("m", ("up", "gpt-4o-mini")),
        alias("other", ("up", "gpt-4o")),
        f'[storage]\ndatabase = "{db}"\nflush_interval_ms = 10\n',
        extra,
    )


async def start(
    gateway_factory: GatewayFactory, fake: FakeOpenAI, tmp_path: Path, extra: str = ""
) -> tuple[RunningGateway, Path]:
    db = tmp_path / "gw.db"
    gw = await gateway_factory(toml(fake, db, extra), env={"UP_KEY": "sk-up"})
    path = tmp_path / "cli.toml"
    path.write_text(f'[storage]\ndatabase = "{db}"\n')
    return gw, path


async def post(gw: RunningGateway, key: str, body: dict[str, Any] = BODY) -> httpx.Response:
    async with gw.http() as http:
        return await http.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )


async def test_key_lifecycle_through_the_cli(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw, config = await start(gateway_factory, fake_openai, tmp_path)
    await cli(config, "users", "create", "team")
    created = await cli(
        config, "keys", "create", "--user", "team", "--name", "svc", "--models", "m"
    )
    secret = secret_of(created)
    assert secret.startswith("llmg_") and len(secret) >= 5 + 43
    await asyncio.sleep(0.7)  # the gateway notices new keys within its refresh interval
    response = await post(gw, secret)
    assert response.status_code == 200
    # The allow-list: another alias is 403 permission_error.
    forbidden = await post(gw, secret, {**BODY, "model": "other"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["type"] == "permission_error"
    assert secret not in await cli(config, "keys", "list")
    # Revoked: refused within a second.
    await cli(config, "keys", "revoke", "1")
    for _ in range(20):
        if (await post(gw, secret)).status_code == 401:
            break
        await asyncio.sleep(0.05)
    assert (await post(gw, secret)).status_code == 401
    # Expired keys are refused too.
    expired = secret_of(
        await cli(
            config, "keys", "create", "--user", "team", "--name", "old", "--expires", "2020-01-01"
        )
    )
    await asyncio.sleep(0.7)
    assert (await post(gw, expired)).status_code == 401
    connection = sqlite3.connect(tmp_path / "gw.db")
    keys = {row[0] for row in connection.execute("SELECT key_name FROM requests")}
    connection.close()
    assert "team/svc" in keys
    connection = sqlite3.connect(tmp_path / "gw.db")
    actions = [r[0] for r in connection.execute("SELECT action FROM audit_log ORDER BY id")]
    connection.close()
    assert actions == ["user.created", "key.created", "key.revoked", "key.created"]
    # Only the hash and a short prefix are stored. (Read the files only once the server
    # is stopped: closing a file drops this process's POSIX locks on it, SQLite's too.)
    await gw.stop()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gw.db*"))
    assert secret.encode() not in raw


async def test_budget_is_never_overspent_under_200_concurrent_requests(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # Each answer costs 7 x $0.15 + 3 x $0.60 per 1M = 2,850 nano-dollars; the worst case
    # reserved up front (the prompt's 27-token bound plus max_tokens=10) is 10,050.
    gw, config = await start(gateway_factory, fake_openai, tmp_path)
    await cli(config, "users", "create", "team", "--budget-usd", "0.0001")  # 100,000 nano
    secret = secret_of(await cli(config, "keys", "create", "--user", "team", "--name", "svc"))
    await asyncio.sleep(0.7)

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return await json_reply(completion())(request)

    fake_openai.enqueue(*[slow] * 200)
    async with gw.http() as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {secret}"}
                )
                for _ in range(200)
            )
        )
    codes = [r.status_code for r in responses]
    assert set(codes) == {200, 402}
    refused = next(r for r in responses if r.status_code == 402)
    assert refused.json()["error"]["type"] == "budget_exceeded"
    await asyncio.sleep(0.3)
    connection = sqlite3.connect(tmp_path / "gw.db")
    (spent,) = connection.execute(
        "SELECT SUM(cost_nano) FROM requests WHERE owner = 'team'"
    ).fetchone()
    connection.close()
    assert spent == codes.count(200) * 2850
    assert spent <= 100_000


async def test_rate_limits_with_openai_headers(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw, config = await start(gateway_factory, fake_openai, tmp_path)
    await cli(config, "users", "create", "team")
    secret = secret_of(
        await cli(
            config,
            "keys",
            "create",
            "--user",
            "team",
            "--name",
            "svc",
            "--rpm",
            "2",
            "--tpm",
            "100",
        )
    )
    await asyncio.sleep(0.7)
    first = await post(gw, secret)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "100"
    assert (await post(gw, secret)).status_code == 200
    limited = await post(gw, secret)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    async with gw.openai(key=secret) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="m", messages=BODY["messages"])


async def test_tokens_per_minute_reserved_then_settled(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw, config = await start(gateway_factory, fake_openai, tmp_path)
    await cli(config, "users", "create", "team")
    secret = secret_of(
        await cli(config, "keys", "create", "--user", "team", "--name", "svc", "--tpm", "200")
    )
    await asyncio.sleep(0.7)
    # The prompt's upper bound: 16 (request framing) + 8 (message) + 2 bytes + 1 = 27.
    big = {**BODY, "max_tokens": 170}
    assert (await post(gw, secret, big)).status_code == 200  # reserved 197, settled to 10
    second = await post(gw, secret, {**BODY, "max_tokens": 50})
    assert second.status_code == 200
    assert second.headers["x-ratelimit-remaining-tokens"] == str(200 - 10 - 77)
    assert (await post(gw, secret, big)).status_code == 429


async def test_thresholds_fire_once_each_to_a_real_webhook(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        received.append(await request.json())
        return web.Response(status=204)

    receiver = await FakeUpstream(hook).start()
    try:
        gw, config = await start(
            gateway_factory,
            fake_openai,
            tmp_path,
            f'[alerts]\nwebhook_url = "{receiver.url}/hook"\n',
        )
        # Each request reserves its bound: 27 prompt tokens at $0.15 and 1 completion token
        # at $0.60 per 1M = 4,650 nano. The upstream bills exactly that, so two requests
        # spend the budget to the nano: 50% after the first, 80% and 100% after the second.
        await cli(config, "users", "create", "team", "--budget-usd", "0.0000093")  # 9,300 nano
        secret = secret_of(await cli(config, "keys", "create", "--user", "team", "--name", "svc"))
        await asyncio.sleep(0.7)
        usage = {"prompt_tokens": 27, "completion_tokens": 1, "total_tokens": 28}
        fake_openai.enqueue(*[json_reply(completion(usage=usage))] * 3)
        replies = [
            (await post(gw, secret, {**BODY, "max_tokens": 1})).status_code for _ in range(3)
        ]
        assert replies == [200, 200, 402]
        for _ in range(50):
            if len(received) >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        await receiver.stop()
    user_alerts = sorted(a["threshold"] for a in received if a["account_type"] == "user")
    assert user_alerts == [0.5, 0.8, 1.0]
    assert all(a["account"] == "team" for a in received)


async def test_key_lifecycle_through_the_cli_on_postgresql(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, postgres_url: str, tmp_path: Path
) -> None:
    """The CLI on one machine, the gateway on another, one PostgreSQL between them."""
    storage = f'[storage]\nbackend = "postgresql"\nurl = "{postgres_url}"\n'
    gw = await gateway_factory(
        gateway_toml(
            provider("up", fake_openai.url, kind="openai", api_key_env="UP_KEY"),
            alias("m", ("up", "gpt-4o-mini")),
            storage + "flush_interval_ms = 10\n",
        ),
        env={"UP_KEY": "sk-up"},
    )
    config = tmp_path / "cli.toml"
    config.write_text(storage)
    await cli(config, "users", "create", "team")
    secret = secret_of(await cli(config, "keys", "create", "--user", "team", "--name", "svc"))
    loop = asyncio.get_running_loop()
    made = loop.time()
    while (await post(gw, secret)).status_code != 200:
        assert loop.time() - made < 1.0, "a key made elsewhere still refused after a second"
        await asyncio.sleep(0.05)
    await cli(config, "keys", "revoke", "1")
    revoked = loop.time()
    while (await post(gw, secret)).status_code != 401:
        assert loop.time() - revoked < 1.0, "a revoked key still accepted after a second"
        await asyncio.sleep(0.05)
    conn = await asyncpg.connect(postgres_url)
    try:
        stored = await conn.fetch("SELECT * FROM api_keys")
        actions = [r[0] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY id")]
    finally:
        await conn.close()
    assert secret not in str([tuple(r) for r in stored])  # the hash and a prefix only
    assert actions == ["user.created", "key.created", "key.revoked"]
