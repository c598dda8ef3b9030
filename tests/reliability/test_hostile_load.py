"""Memory and connections stay bounded against hostile clients and broken upstreams.

Each attack runs against a real `llm-gateway serve` process, whose peak resident memory
(VmHWM) is read afterwards. Figures are printed for docs/reliability.md (`pytest -s`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from hashlib import sha256
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.support.configs import gateway_toml, provider
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import KEY
from tests.support.process import GatewayProcess

AUTH = {"Authorization": f"Bearer {KEY}"}
ADMIN = "llmg_admin_for_hostile_load"
MB = 1024 * 1024
# A gateway at rest holds about 60 MB; each attack below would take hundreds of MB (or
# the machine) without its bound.
PEAK_RSS_MB = 150


async def endless(request: web.Request) -> web.StreamResponse:
    """A plain JSON body, or an SSE event with no blank line, that never ends."""
    streaming = b'"stream":true' in await request.read()
    response = web.StreamResponse()
    response.content_type = "text/event-stream" if streaming else "application/json"
    await response.prepare(request)
    line = b"data: " + b"x" * 65536 + b"\n" if streaming else b"[" + b"1," * 32768
    try:
        while True:
            await response.write(line)
    except (ConnectionError, asyncio.CancelledError):
        return response


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = await FakeUpstream(endless).start()
    yield fake
    await fake.stop()


async def start(
    tmp_path: Path, upstream: FakeUpstream, body_mb: float = 8, **server: object
) -> GatewayProcess:
    settings = "\n".join(f"{k} = {v}" for k, v in server.items())
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(
            provider("up", upstream.url, max_response_mb=8, max_event_mb=1),
            '[[models]]\nalias = "m"\nroutes = [{ provider = "up", model = "x" }]\n',
            f'[storage]\ndatabase = "{tmp_path / "log.db"}"\n',
            '[logging]\nformat = "json"\nlevel = "warning"\n',
            f'[[keys]]\nname = "ops"\nadmin = true\nkey_sha256 = "{sha256(ADMIN.encode()).hexdigest()}"\n',
            attempts=0,
            body_mb=body_mb,
        ).replace('[server]\nhost = "127.0.0.1"', f'[server]\nhost = "127.0.0.1"\n{settings}')
    )
    process = GatewayProcess(config, tmp_path / "gateway.log")
    await process.ready()
    return process


@pytest.mark.parametrize("stream", [False, True])
async def test_an_endless_upstream_body_or_event_is_cut_at_its_bound(
    tmp_path: Path, upstream: FakeUpstream, stream: bool
) -> None:
    gateway = await start(tmp_path, upstream)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            reply = await http.post(
                "/v1/chat/completions",
                headers=AUTH,
                json={
                    "model": "m",
                    "stream": stream,
                    "messages": [{"role": "user", "content": "x"}],
                },
            )
            after = await http.get("/healthz")
        peak = gateway.peak_rss_mb()
    finally:
        gateway.stop()
    assert reply.status_code == 502, reply.text
    assert "larger than" in reply.json()["error"]["message"]
    assert after.status_code == 200
    print(f"\nendless upstream {'event' if stream else 'body'}: peak RSS {peak:.0f} MB")
    assert peak < PEAK_RSS_MB


async def test_oversized_and_endless_request_bodies_are_refused_everywhere(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gateway = await start(tmp_path, upstream, body_mb=1, body_timeout_s=1)

    try:
        # 200 MB of "credential", sent chunked: there is no content-length to refuse up front
        answers = [
            await upload(gateway.port, "/api/credentials", 200),
            await upload(gateway.port, "/api/users", 50),
            await upload(gateway.port, "/v1/chat/completions", 50),
        ]
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            # a credential body over its own, smaller limit
            small = await http.post(
                "/api/credentials",
                headers={"Authorization": f"Bearer {ADMIN}"},
                json={"provider": "up", "api_key": "k" * 20_000},
            )
        peak = gateway.peak_rss_mb()
        slow = await trickle(gateway.port)
    finally:
        gateway.stop()
    assert all(a.startswith(b"HTTP/1.1 413") for a in answers), answers
    assert all(b"request_too_large" in a for a in answers)
    assert small.status_code == 413 and small.json()["error"]["code"] == "request_too_large"
    assert slow.startswith(b"HTTP/1.1 408"), slow[:200]
    print(f"\n250 MB of request bodies: peak RSS {peak:.0f} MB")
    assert peak < PEAK_RSS_MB


async def upload(port: int, path: str, megabytes: int) -> bytes:
    """A chunked upload that stops once the gateway has answered (it will not read it all)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ADMIN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    answer = asyncio.ensure_future(read_response(reader))
    chunk = b"%x\r\n" % MB + b"x" * MB + b"\r\n"
    try:
        for _ in range(megabytes):
            if answer.done():
                break
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    try:
        return await asyncio.wait_for(answer, 10)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP response with a content-length: its head, then exactly its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def trickle(port: int) -> bytes:
    """Headers promise a body that never comes: the body timeout answers 408."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
    )
    await writer.drain()
    answer = await asyncio.wait_for(read_response(reader), 10)
    writer.close()
    return answer


async def test_unfinished_headers_idle_sockets_and_too_many_connections(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gateway = await start(
        tmp_path, upstream, header_timeout_s=1, max_connections=200, max_header_kb=64
    )
    try:
        # 30 connections each sending 20 MB of headers that never end
        answers = await asyncio.gather(*(endless_headers(gateway.port) for _ in range(30)))
        header_peak = gateway.peak_rss_mb()
        # 250 sockets that send nothing: 200 are held, then closed by the header timeout;
        # the rest are refused at once with a 503
        idle = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(250)]
        await asyncio.sleep(0.3)
        refused = 0
        for reader, _ in idle[200:]:
            if (await asyncio.wait_for(reader.read(4096), 5)).startswith(b"HTTP/1.1 503"):
                refused += 1
        timed_out = 0
        for reader, _ in idle[:200]:
            if (await asyncio.wait_for(reader.read(4096), 5)).startswith(b"HTTP/1.1 408"):
                timed_out += 1
        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            after = await http.get("/healthz")
        fds = gateway.open_fds()
    finally:
        gateway.stop()
    assert all(a.startswith(b"HTTP/1.1 431") for a in answers), answers[0][:100]
    assert refused == 50 and timed_out == 200
    assert after.status_code == 200 and fds < 60
    print(f"\n30 x 20 MB of unfinished headers: peak RSS {header_peak:.0f} MB; fds after {fds}")
    assert header_peak < PEAK_RSS_MB


async def endless_headers(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(20 * 16):  # 20 MB in 64 KB header lines
            writer.write(b"X-Junk: " + b"a" * 65536 + b"\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the gateway answered and closed: the answer is already in the buffer
    try:
        answer = await asyncio.wait_for(reader.read(4096), 10)
    except ConnectionError:
        answer = b"reset without an answer"
    writer.close()
    return answer
