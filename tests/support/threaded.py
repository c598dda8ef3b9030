"""Servers in their own thread and event loop, for synchronous drivers (hypothesis,
schemathesis) that call them with a plain blocking client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tests.support.gateway import RunningGateway


class Stoppable(Protocol):
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


@contextmanager
def threaded(start: Callable[[], Awaitable[S]]) -> Iterator[S]:
    """Run what `start()` returns in a loop of its own until the block ends, then stop it."""
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            try:
                holder["server"] = await start()
            finally:
                holder["stop"] = asyncio.Event()
                ready.set()
            await holder["stop"].wait()
            await holder["server"].stop()

        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(20) and "server" in holder, "the server did not start"
    try:
        yield holder["server"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(20)


@contextmanager
def threaded_gateway(config: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    with threaded(lambda: RunningGateway(config, env).start()) as running:
        yield running.url
