"""Running the app under uvicorn, with the gateway told about shutdown as soon as it starts."""

from __future__ import annotations

import asyncio
import signal
import sys
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


async def preflight(config: GatewayConfig) -> None:
    """Refuse to start, with one clear line, when stored credentials cannot be decrypted."""
    db = await Database.open(config.storage.database)
    try:
        master = config.credentials
        await CredentialStore(db, cipher(master.master_key), master.master_key_env).verify()
    finally:
        await db.close()


def serve(config: GatewayConfig) -> int:
    try:
        asyncio.run(preflight(config))
    except MasterKeyError as error:
        print(f"error: {error}", file=sys.stderr)
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
    return 0
