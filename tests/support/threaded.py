"""The gateway in its own thread and event loop, for synchronous drivers (hypothesis,
schemathesis) that call it with a plain blocking client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.gateway import RunningGateway


@contextmanager
def threaded_gateway(config: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            running = await RunningGateway(config, env).start()
            holder["url"] = running.url
            holder["stop"] = asyncio.Event()
            ready.set()
            await holder["stop"].wait()
            await running.stop()

        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(20), "the gateway did not start"
    try:
        yield str(holder["url"])
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(20)
