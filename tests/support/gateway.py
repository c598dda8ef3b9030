"""Run the real gateway app under uvicorn on an ephemeral loopback port, in the test's loop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import uvicorn

from proxy.app import build_app
from proxy.config import DEV_KEY, load_config
from proxy.server import uvicorn_config

KEY = DEV_KEY


class RunningGateway:
    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        self.config = load_config(config_path, env=env or {})
        self.app = build_app(self.config)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RunningGateway:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        # The production settings (connection limits included), in the test's own loop.
        config = uvicorn_config(self.app, self.config, loop="asyncio", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def openai(self, key: str = KEY, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=30, **kwargs
        )

    def anthropic(self, key: str = KEY, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """The anthropic SDK as its users point it at a gateway (ANTHROPIC_BASE_URL)."""
        return anthropic.AsyncAnthropic(
            base_url=self.url, api_key=key, max_retries=0, timeout=30, **kwargs
        )

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway
