"""Many streams at once and a storm of upstream and client faults, on the real process.

Afterwards the gateway must still serve, its open file descriptors must be back near the
baseline (no leaked connections), and every request a client got an answer for must have
its row in the request log. Figures are printed for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.configs import MOCK, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI, chunk, stream_events
from tests.support.fake_upstream import Pause, Raw, Reset, hang, json_reply, sse_reply
from tests.support.gateway import KEY
from tests.support.process import GatewayProcess

AUTH = {"Authorization": f"Bearer {KEY}"}
STREAMS = 500
WORDS = [f"w{i:02d} " for i in range(20)]


async def started(
    fake_openai: FakeOpenAI, tmp_path: Path, timeout_s: float
) -> AsyncIterator[GatewayProcess]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(
            provider(
                "up",
                fake_openai.url,
                first_byte_timeout_s=timeout_s,
                idle_timeout_s=timeout_s,
                keepalive_timeout_s=1,
            ),
            MOCK,
            '[[models]]\nalias = "m"\nroutes = [{ provider = "up", model = "x", input_price = 1,'
            ' output_price = 1 }, { provider = "demo", model = "echo" }]\n',
            f'[storage]\ndatabase = "{tmp_path / "log.db"}"\nflush_interval_ms = 50\n',
            '[cache]\nenabled = false\n[logging]\nformat = "json"\nlevel = "warning"\n',
            attempts=1,
            threshold=1000,
        )
    )
    process = GatewayProcess(config, tmp_path / "gateway.log")
    await process.ready()
    yield process
    process.stop()


@pytest.fixture
async def gateway(fake_openai: FakeOpenAI, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    """Short upstream timeouts, for the faults to meet."""
    async for process in started(fake_openai, tmp_path, timeout_s=1):
        yield process


@pytest.fixture
async def patient_gateway(fake_openai: FakeOpenAI, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    """Upstream timeouts a loaded test process cannot trip: the fake upstream shares its
    event loop with 500 streaming clients, and a stall there of over a second is not the
    gateway's (it once sent a stream to the fallback route on a busy CI machine)."""
    async for process in started(fake_openai, tmp_path, timeout_s=5):
        yield process


def logged_ids(db: Path) -> set[str]:
    connection = sqlite3.connect(db)
    try:
        return {row[0] for row in connection.execute("SELECT request_id FROM requests")}
    finally:
        connection.close()


async def stream_text(http: httpx.AsyncClient, body: dict[str, object]) -> tuple[str, str, str]:
    async with http.stream("POST", "/v1/chat/completions", json=body, headers=AUTH) as response:
        raw = b"".join([part async for part in response.aiter_bytes()])
    return response.headers["x-request-id"], raw.decode(), response.headers["x-gateway-provider"]


async def test_500_concurrent_streams_arrive_whole_and_in_order(
    patient_gateway: GatewayProcess, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gateway = patient_gateway
    # Every request (retries too, on a loaded machine) gets the same 20-chunk stream.
    fake_openai.answer_by_default(sse_reply(fake_openai, stream_events(WORDS, pause=0.005)))
    baseline = gateway.open_fds()
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    limits = httpx.Limits(max_connections=STREAMS, max_keepalive_connections=0)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60, limits=limits) as http:
        results = await asyncio.gather(*(stream_text(http, body) for _ in range(STREAMS)))
    elapsed = time.perf_counter() - started
    expected = "".join(WORDS)
    for _, text, provider_name in results:
        contents = [line for line in text.split("\n\n") if '"content"' in line]
        words = "".join(part.split('"content":"')[1].split('"')[0] for part in contents)
        assert words == expected and text.endswith("data: [DONE]\n\n") and provider_name == "up"
    await asyncio.sleep(2.5)  # past the pool's keep-alive: idle upstream connections close
    peak = gateway.peak_rss_mb()
    fds = gateway.open_fds()
    assert gateway.stop() == 0
    assert {rid for rid, _, _ in results} <= logged_ids(tmp_path / "log.db")
    print(
        f"\n{STREAMS} streams x {len(WORDS)} chunks in {elapsed:.1f}s; gateway peak RSS "
        f"{peak:.0f} MB; open fds {baseline} before, {fds} after"
    )
    assert peak < 200
    assert fds <= baseline + 5


async def test_faults_leave_no_leak_and_no_missing_row(
    gateway: GatewayProcess, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    baseline = gateway.open_fds()
    partial = [chunk({"role": "assistant", "content": ""}), chunk({"content": "part"})]
    faults = [
        sse_reply(fake_openai, [*partial, Reset()]),  # reset mid-stream
        hang(8),  # hangs: 3 s timeouts
        sse_reply(fake_openai, [Raw(b"data: {garbage\n\n")]),  # garbage
        json_reply({"error": {"message": "slow down"}}, 429, {"Retry-After": "0"}),  # 429 storm
        json_reply({"error": {"message": "down"}}, 503),  # provider down
        sse_reply(fake_openai, [*partial, Pause(5), chunk({"content": "late"}), b"[DONE]"]),
    ]
    fake_openai.enqueue(*(faults * 8))
    plain = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    stream = {**plain, "stream": True}
    answered: list[str] = []

    async def one(i: int, http: httpx.AsyncClient) -> None:
        body = stream if i % 2 else plain
        if i % 7 == 0:  # a client that leaves mid-stream
            async with http.stream(
                "POST", "/v1/chat/completions", json=stream, headers=AUTH
            ) as response:
                async for _ in response.aiter_bytes():
                    break
            return
        if i % 5 == 0:  # a slow reader
            async with http.stream(
                "POST", "/v1/chat/completions", json=stream, headers=AUTH
            ) as response:
                async for _ in response.aiter_bytes(1):
                    await asyncio.sleep(0.01)
            answered.append(response.headers["x-request-id"])
            return
        response = await http.post("/v1/chat/completions", json=body, headers=AUTH)
        assert response.status_code in (200, 502, 504), response.text
        answered.append(response.headers["x-request-id"])

    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        await asyncio.gather(*(one(i, http) for i in range(60)))
        # Still serving, and served by the real upstream again once it behaves.
        after = await http.post("/v1/chat/completions", json=plain, headers=AUTH)
        assert after.status_code == 200
    await asyncio.sleep(2.5)  # past the pool's keep-alive: idle upstream connections close
    fds = gateway.open_fds()
    assert gateway.stop() == 0
    missing = set(answered) - logged_ids(tmp_path / "log.db")
    print(
        f"\n60 requests across {len(faults)} fault kinds; rows missing {len(missing)}; "
        f"open fds {baseline} before, {fds} after"
    )
    assert not missing
    assert fds <= baseline + 5
