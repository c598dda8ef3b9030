"""No secret leaks: an upstream that echoes the key it was given, in every way it can.

The fake upstream below puts the `Authorization` header it received into its 400, 401
and 500 error messages and into a stream error event. Neither the provider key nor a
user's own stored key may reach the client, the console or JSON log lines, the request
log (error message and attempts) or the debug log.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from tests.support.fake_upstream import FakeUpstream, sse_reply
from tests.support.gateway import KEY
from tests.support.process import GatewayProcess

PROVIDER_KEY = "sk-proj-PROVIDERsecret0123456789abcdef"
USER_KEY = "own-user-key-that-has-no-known-shape-42"
MASTER = Fernet.generate_key().decode()
ROOT = Path(__file__).parent.parent.parent


class EchoingUpstream(FakeUpstream):
    """Answers by the requested model's name, always quoting the credentials it received."""

    def __init__(self) -> None:
        super().__init__(self._answer)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        auth = request.headers.get("Authorization", "")
        model = body["model"]
        if model == "stream-error":
            events = [
                {"choices": [{"index": 0, "delta": {"content": "partial"}}]},
                {"error": {"message": f"internal failure for {auth}", "type": "server_error"}},
            ]
            return await sse_reply(self, events)(request)
        status = {"e400": 400, "e401": 401, "e500": 500}[model]
        message = f"Incorrect API key provided: {auth} (header Authorization: {auth})"
        error = {"error": {"message": message, "type": "invalid_request_error", "param": None}}
        return web.json_response(error, status=status)


def config(upstream: EchoingUpstream, db: Path, log_format: str) -> str:
    models = "\n".join(
        f'[[models]]\nalias = "{name}"\nroutes = [{{ provider = "up", model = "{name}" }}]'
        for name in ("e400", "e401", "e500", "stream-error")
    )
    return f"""
[server]
host = "127.0.0.1"
[[keys]]
name = "dev"
dev_only = true
[providers.up]
type = "openai"
base_url = "{upstream.url}/v1"
api_key_env = "UP_KEY"
[retry]
attempts_per_route = 0
{models}
[storage]
database = "{db}"
flush_interval_ms = 10
[debug_log]
enabled = true
[logging]
format = "{log_format}"
"""


def cli(config_path: Path, *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", *args, "--config", str(config_path)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "UP_KEY": PROVIDER_KEY, "GATEWAY_MASTER_KEY": MASTER},
        check=True,
    )
    return result.stdout


async def exercise(url: str, key: str) -> list[bytes]:
    """Every failure mode, plain and streaming; returns what the client received."""
    bodies = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        for model in ("e400", "e401", "e500", "stream-error"):
            for stream in (False, True):
                reply = await http.post(
                    "/v1/chat/completions",
                    headers=headers,
                    json={
                        "model": model,
                        "stream": stream,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                )
                assert reply.status_code in (200, 400, 502), reply.text
                bodies.append(reply.content)
    return bodies


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_echoed_keys_are_scrubbed_everywhere(tmp_path: Path, log_format: str) -> None:
    upstream = await EchoingUpstream().start()
    db = tmp_path / "gw.db"
    path = tmp_path / "gateway.toml"
    path.write_text(config(upstream, db, log_format))
    await asyncio.to_thread(cli, path, "users", "create", "team")
    created = await asyncio.to_thread(cli, path, "keys", "create", "--user", "team", "--name", "k")
    user_gateway_key = next(
        line.split()[1] for line in created.splitlines() if line.startswith("secret:")
    )
    await asyncio.to_thread(
        cli, path, "credentials", "set", "--user", "team", "--provider", "up", stdin=USER_KEY
    )
    server = GatewayProcess(
        path, tmp_path / "server.log", env={"UP_KEY": PROVIDER_KEY, "GATEWAY_MASTER_KEY": MASTER}
    )
    try:
        await server.ready()
        seen = await exercise(server.url, KEY)  # the provider's key
        seen += await exercise(server.url, user_gateway_key)  # the user's own key
        await asyncio.sleep(0.3)  # the log writer's flush
    finally:
        assert server.stop() == 0
        await upstream.stop()

    # The upstream really did echo them: the test is meaningful.
    assert any(f"Bearer {PROVIDER_KEY}" == r.headers["Authorization"] for r in upstream.requests)
    assert any(f"Bearer {USER_KEY}" == r.headers["Authorization"] for r in upstream.requests)
    secrets = (PROVIDER_KEY, USER_KEY, user_gateway_key)
    client_text = b"\n".join(seen).decode()
    assert "[redacted]" in client_text
    log_text = (tmp_path / "server.log").read_text()
    assert "stream_failed" in log_text and "upstream" in log_text
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT error_message, failed_attempts FROM requests WHERE error_message IS NOT NULL"
        ).fetchall()
        debug = conn.execute("SELECT request_body, response_body FROM debug_bodies").fetchall()
    assert len(rows) >= 12 and debug
    stored = orjson.dumps([rows, debug]).decode()
    for secret in secrets:
        assert secret not in client_text
        assert secret not in log_text
        assert secret not in stored
