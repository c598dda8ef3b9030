"""The real server process: graceful stop under load, SIGHUP reload, readiness on shutdown."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import KEY
from tests.support.process import GatewayProcess

AUTH = {"Authorization": f"Bearer {KEY}"}


def config(tmp_path: Path, latency_ms: int, alias: str = "slow") -> str:
    return f"""
[server]
host = "127.0.0.1"
shutdown_grace_s = 10
[[keys]]
name = "dev"
dev_only = true
[providers.demo]
type = "mock"
latency_ms = {latency_ms}
[[models]]
alias = "{alias}"
routes = [{{ provider = "demo", model = "echo" }}]
[storage]
database = "{tmp_path / "log.db"}"
flush_interval_ms = 5000
batch_size = 100000
[logging]
format = "json"
"""


class Server(GatewayProcess):
    def __init__(self, tmp_path: Path, latency_ms: int = 300) -> None:
        self.path = tmp_path / "gateway.toml"
        self.path.write_text(config(tmp_path, latency_ms))
        self.db = tmp_path / "log.db"
        super().__init__(self.path, tmp_path / "server.log")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    running = Server(tmp_path)
    await running.ready()
    yield running
    running.stop()


async def test_sigterm_under_load_finishes_requests_and_loses_no_row(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
        stream = {**body, "stream": True}
        requests = [
            asyncio.create_task(http.post("/v1/chat/completions", json=b, headers=AUTH))
            for b in [body] * 40 + [stream] * 10
        ]
        await asyncio.sleep(0.15)  # all of them are in flight, waiting on the upstream
        server.terminate()
        responses = await asyncio.gather(*requests, return_exceptions=True)
    assert await asyncio.to_thread(server.stop) == 0
    answered = [r for r in responses if isinstance(r, httpx.Response) and r.status_code == 200]
    assert len(answered) == 50
    assert all(
        b"[DONE]" in r.content
        for r in answered
        if r.headers["content-type"].startswith("text/event-stream")
    )
    ids = {r.headers["x-request-id"] for r in answered}
    connection = sqlite3.connect(server.db)
    logged = {row[0] for row in connection.execute("SELECT request_id FROM requests")}
    connection.close()
    assert ids <= logged


async def test_readyz_fails_as_soon_as_shutdown_starts(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        slow = asyncio.create_task(
            http.post(
                "/v1/chat/completions",
                headers=AUTH,
                json={"model": "slow", "messages": [{"role": "user", "content": "x"}]},
            )
        )
        await asyncio.sleep(0.1)
        # A keep-alive connection opened before the signal can still ask.
        assert (await http.get("/readyz")).status_code == 200
        server.terminate()
        await asyncio.sleep(0.05)
        try:
            ready = (await http.get("/readyz")).status_code
        except httpx.TransportError:
            ready = 0  # no new connections either: drained
        assert ready in (503, 0)
        assert (await slow).status_code == 200


async def test_sighup_reloads_and_an_invalid_file_keeps_the_old_config(
    server: Server, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        models = (await http.get("/v1/models", headers=AUTH)).json()
        assert [m["id"] for m in models["data"]] == ["slow"]
        server.path.write_text(config(tmp_path, 0, alias="renamed"))
        server.process.send_signal(signal.SIGHUP)
        for _ in range(100):
            await asyncio.sleep(0.02)
            ids = [m["id"] for m in (await http.get("/v1/models", headers=AUTH)).json()["data"]]
            if ids == ["renamed"]:
                break
        assert ids == ["renamed"]
        server.path.write_text("[server\nbroken")
        server.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        ids = [m["id"] for m in (await http.get("/v1/models", headers=AUTH)).json()["data"]]
        assert ids == ["renamed"]
        metrics = (await http.get("/metrics")).text
    assert 'gateway_config_reloads_total{result="ok"} 1.0' in metrics
    assert 'gateway_config_reloads_total{result="error"} 1.0' in metrics
    assert server.process.poll() is None


async def test_admin_reload_endpoint(gateway_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    admin = "llmg_admin_for_reload_test"
    digest = hashlib.sha256(admin.encode()).hexdigest()
    base = (
        '[server]\nhost = "127.0.0.1"\n'
        '[[keys]]\nname = "dev"\ndev_only = true\n'
        f'[[keys]]\nname = "ops"\nkey_sha256 = "{digest}"\nadmin = true\n'
        '[providers.demo]\ntype = "mock"\n'
        f'[storage]\ndatabase = "{tmp_path / "r.db"}"\n'
    )
    gw = await gateway_factory(
        base + '[[models]]\nalias = "one"\nroutes = [{ provider = "demo", model = "echo" }]\n'
    )
    config_path = Path(gw.config.path)
    config_path.write_text(
        base + '[[models]]\nalias = "two"\nroutes = [{ provider = "demo", model = "echo" }]\n'
    )
    async with gw.http() as http:
        refused = await http.post("/api/admin/reload", headers=AUTH)
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "permission_error"
        done = await http.post("/api/admin/reload", headers={"Authorization": f"Bearer {admin}"})
        assert done.status_code == 200 and done.json()["aliases"] == ["two"]
        config_path.write_text("[[models]]\nalias = 5\n")
        bad = await http.post("/api/admin/reload", headers={"Authorization": f"Bearer {admin}"})
        assert bad.status_code == 400 and "models[0].alias" in bad.json()["error"]["message"]
        models = (await http.get("/v1/models", headers=AUTH)).json()["data"]
    assert [m["id"] for m in models] == ["two"]
    await asyncio.sleep(0.1)
    connection = sqlite3.connect(tmp_path / "r.db")
    actions = connection.execute("SELECT actor, action FROM audit_log ORDER BY id").fetchall()
    connection.close()
    assert actions == [("ops", "config.reloaded"), ("ops", "config.reload_rejected")]


@pytest.mark.parametrize("problem", ["locked", "not_a_database", "parent_is_a_file"])
async def test_a_database_it_cannot_use_fails_the_start_fast_with_one_line(
    tmp_path: Path, problem: str
) -> None:
    """systemd's Restart=on-failure only helps if a failed start exits, non-zero."""
    import subprocess
    import sys
    import time

    db = tmp_path / "log.db"
    holder = None
    if problem == "locked":
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("CREATE TABLE t (a)")
        holder.execute("BEGIN EXCLUSIVE")
    elif problem == "not_a_database":
        db.write_bytes(b"this is no database" * 100)
    else:
        (tmp_path / "file").write_text("x")
        db = tmp_path / "file" / "log.db"
    path = tmp_path / "gateway.toml"
    path.write_text(config(tmp_path, 0).replace(str(tmp_path / "log.db"), str(db)))
    started = time.monotonic()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "proxy", "serve", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    elapsed = time.monotonic() - started
    if holder is not None:
        holder.close()
    assert result.returncode != 0
    assert elapsed < 10, elapsed
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert str(db) in lines[0] and "Traceback" not in result.stderr


async def test_the_start_up_curl_line_runs_as_printed(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "gateway.toml"
    path.write_text(config(tmp_path, 0).replace('format = "json"', 'format = "console"'))
    server = GatewayProcess(path, tmp_path / "server.log")
    try:
        await server.ready()
        lines = (tmp_path / "server.log").read_text().splitlines()
        curl = next(line for line in lines if line.startswith("curl "))
        result = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", curl], capture_output=True, text=True, timeout=30
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert '"object":"chat.completion"' in result.stdout
