"""Running the app under uvicorn, with the gateway told about shutdown as soon as it starts."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import socket
import sqlite3
import sys
from types import FrameType
from typing import Any

import asyncpg
import uvicorn
from starlette.types import ASGIApp

from proxy.accounts.credentials import CredentialStore, MasterKeyError, cipher
from proxy.app import build_app
from proxy.config import GatewayConfig
from proxy.gateway import Gateway
from proxy.protocol import ConnectionLimits, bounded_protocol
from proxy.storage.connect import describe, open_database
from proxy.workers import Supervisor, listen


class GatewayServer(uvicorn.Server):
    """uvicorn's server; on SIGTERM /readyz starts failing at once, so balancers drain us.

    uvicorn then stops accepting, lets in-flight requests (streams too) finish within
    `shutdown_grace_s`, cancels the rest, and runs the lifespan shutdown, which flushes
    the request log.
    """

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.gateway.shutting_down = True
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals after a graceful stop, which would end the
        # process "killed by SIGTERM"; a drained, flushed stop is a clean exit (status 0).
        if sig == signal.SIGTERM:
            self._captured_signals = [s for s in self._captured_signals if s != sig]


# A start-up that cannot open its database must fail fast (systemd's Restart=on-failure
# only acts on an exit), well within the 10 s an operator would wait.
PREFLIGHT_TIMEOUT_S = 8.0


def uvicorn_config(app: ASGIApp, config: GatewayConfig, **overrides: Any) -> uvicorn.Config:
    """How uvicorn runs the gateway: uvloop, httptools with connection limits, no access
    log of its own (the gateway writes one), a bounded graceful shutdown."""
    server = config.server
    limits = ConnectionLimits(
        max_header_bytes=server.max_header_bytes,
        header_timeout_s=server.header_timeout_s,
        max_connections=server.max_connections,
    )
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "loop": "uvloop",
        "http": bounded_protocol(limits),
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "server_header": False,
        "timeout_keep_alive": max(1, round(server.keepalive_timeout_s)),
        "timeout_graceful_shutdown": int(server.shutdown_grace_s),
    }
    return uvicorn.Config(app, **{**options, **overrides})


def raise_open_file_limit() -> None:
    """Up to the hard limit: every connection and upstream socket is a file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def preflight(config: GatewayConfig) -> None:
    """Open (and migrate) the database and check the credentials' master key, or fail."""
    async with asyncio.timeout(PREFLIGHT_TIMEOUT_S):
        db = await open_database(config.storage, timeout_s=PREFLIGHT_TIMEOUT_S)
        try:
            master = config.credentials
            await CredentialStore(db, cipher(master.master_key), master.master_key_env).verify()
        finally:
            await db.close()


def serve(config: GatewayConfig, workers: int = 1) -> int:
    path = describe(config.storage)
    try:
        asyncio.run(preflight(config))
    except MasterKeyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(
            f"error: the database {path} did not open within {PREFLIGHT_TIMEOUT_S:g}s",
            file=sys.stderr,
        )
        return 1
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
        print(f"error: cannot use the database {path}: {error}", file=sys.stderr)
        return 1
    raise_open_file_limit()
    if workers == 1:
        return run_gateway(config)
    try:
        sock = listen(config.server.host, config.server.port)
    except OSError as error:
        print(f"error: cannot listen on port {config.server.port}: {error}", file=sys.stderr)
        return 1
    return Supervisor(workers, sock, lambda: run_gateway(config, sock)).run()


def run_gateway(config: GatewayConfig, sock: socket.socket | None = None) -> int:
    """One gateway process: on its own port, or on a socket shared with other workers."""
    app = build_app(config)
    server = GatewayServer(uvicorn_config(app, config), app.state.gateway)
    server.run(sockets=None if sock is None else [sock])
    # uvicorn returns normally when the lifespan start-up failed; that is no clean stop.
    return 0 if server.started else 1
