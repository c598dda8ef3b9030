"""The floor: the least a Python proxy on this stack can do per request, to measure the
gateway against. Starlette on uvicorn (uvloop, httptools), one pooled aiohttp session,
orjson; no auth, routing, accounting or logging. Plain answers are relayed as bytes,
streams event by event (each SSE event its own write, as a proxy must for time to first
token).

    python -m bench.floor LISTEN_PORT UPSTREAM_PORT
"""

from __future__ import annotations

import sys

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = ""
session: aiohttp.ClientSession | None = None


async def relay(request: Request) -> Response:
    global session
    if session is None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    body = await request.body()
    upstream = await session.post(UPSTREAM, data=body, headers={"Content-Type": "application/json"})
    if upstream.content_type != "text/event-stream":
        data = await upstream.read()
        return Response(data, upstream.status, media_type="application/json")

    async def events() -> object:
        buffer = b""
        async for chunk in upstream.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                yield event + b"\n\n"
        upstream.release()

    return StreamingResponse(events(), media_type="text/event-stream")  # type: ignore[arg-type]


async def ready(request: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/chat/completions", relay, methods=["POST"]),
        Route("/readyz", ready, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    UPSTREAM = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
