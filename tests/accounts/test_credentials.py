"""Users' own provider keys: encrypted on disk, masked everywhere, used for their requests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.conftest import GatewayFactory
from tests.support.configs import alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_upstream import json_reply

ROOT = Path(__file__).parent.parent.parent
MASTER = Fernet.generate_key().decode()
USER_KEY = "sk-user-own-key-0123456789"


def toml(fake: FakeOpenAI, db: Path) -> str:
    return gateway_toml(
        provider("up", fake.url, kind="openai", api_key_env="UP_KEY"),
        alias("m", ("up", "gpt-4o-mini")),
        f'[storage]\ndatabase = "{db}"\nflush_interval_ms = 10\n',
    )


async def cli(
    config: Path, *args: str, stdin: str = "", master: str | None = MASTER, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UP_KEY": "sk-gateway"}
    env.pop("GATEWAY_MASTER_KEY", None)
    if master is not None:
        env["GATEWAY_MASTER_KEY"] = master
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "proxy", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def test_own_key_is_encrypted_masked_and_used(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "gw.db"
    config = tmp_path / "gateway.toml"
    config.write_text(toml(fake_openai, db))
    await cli(config, "users", "create", "team")
    created = (await cli(config, "keys", "create", "--user", "team", "--name", "svc")).stdout
    secret = next(line.split()[1] for line in created.splitlines() if line.startswith("secret:"))
    stored = (
        await cli(
            config,
            "credentials",
            "set",
            "--user",
            "team",
            "--provider",
            "up",
            stdin=USER_KEY + "\n",
        )
    ).stdout
    assert "sk-u...6789" in stored and USER_KEY not in stored
    listed = (await cli(config, "credentials", "list")).stdout
    assert "sk-u...6789" in listed and USER_KEY not in listed

    gw = await gateway_factory(
        toml(fake_openai, db), env={"UP_KEY": "sk-gateway", "GATEWAY_MASTER_KEY": MASTER}
    )
    async with gw.openai(key=secret) as client:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    async with gw.openai() as client:  # the static dev key: no user, the gateway's key
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "y"}])
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {USER_KEY}"
    assert fake_openai.requests[1].headers["Authorization"] == "Bearer sk-gateway"

    ok = await cli(config, "credentials", "test", "1")
    assert ok.stdout.startswith("ok (HTTP 200)")
    fake_openai.enqueue(json_reply({"error": {"message": "Incorrect API key"}}, status=401))
    failed = await cli(config, "credentials", "test", "1", check=False)
    assert failed.returncode == 1 and "Incorrect API key" in failed.stdout

    await gw.stop()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gw.db*"))
    assert USER_KEY.encode() not in raw


async def test_missing_or_wrong_master_key_refuses_to_start(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(toml(fake_openai, tmp_path / "gw.db"))
    await cli(config, "users", "create", "team")
    await cli(config, "credentials", "set", "--user", "team", "--provider", "up", stdin="sk-x\n")
    missing = await cli(config, "serve", master=None, check=False)
    assert missing.returncode == 1
    assert "GATEWAY_MASTER_KEY is not set" in missing.stderr and "Traceback" not in missing.stderr
    wrong = await cli(config, "serve", master=Fernet.generate_key().decode(), check=False)
    assert wrong.returncode == 1 and "wrong master key" in wrong.stderr
    garbage = await cli(config, "credentials", "list", master="not-a-key", check=False)
    assert garbage.returncode == 1 and "not a valid Fernet key" in garbage.stderr
