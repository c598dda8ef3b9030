"""Running the app under uvicorn, with the gateway told about shutdown as soon as it starts."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from proxy.accounts.credentials import CredentialStore, MasterKeyError, cipher
from proxy.app import build_app
from proxy.config import GatewayConfig
from proxy.gateway import Gateway
from proxy.storage.database import Database


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


async def preflight(config: GatewayConfig) -> None:
    """Open (and migrate) the database and check the credentials' master key, or fail."""
    path = config.storage.database
    async with asyncio.timeout(PREFLIGHT_TIMEOUT_S):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await Database.open(path, busy_timeout_ms=int(PREFLIGHT_TIMEOUT_S * 500))
        try:
            master = config.credentials
            await CredentialStore(db, cipher(master.master_key), master.master_key_env).verify()
        finally:
            await db.close()


def serve(config: GatewayConfig) -> int:
    path = config.storage.database
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
    except (sqlite3.Error, OSError) as error:
        print(f"error: cannot use the database {path}: {error}", file=sys.stderr)
        return 1
    app = build_app(config)
    server = GatewayServer(
        uvicorn.Config(
            app,
            host=config.server.host,
            port=config.server.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
            server_header=False,
            timeout_graceful_shutdown=int(config.server.shutdown_grace_s),
        ),
        app.state.gateway,
    )
    server.run()
    # uvicorn returns normally when the lifespan start-up failed; that is no clean stop.
    return 0 if server.started else 1
