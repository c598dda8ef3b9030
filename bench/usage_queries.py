"""Usage queries on a large log: one million request rows over a month, then the timings
of the management API's summary, charts and request-log pages through a real server, on
SQLite and on PostgreSQL (a server of its own on loopback, like the tests')."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.main import free_port, wait_ready
from proxy.config import StorageConfig
from proxy.storage.connect import log_writer
from proxy.storage.rows import RequestRow
from tests.support.browser import FIRST_PAINT, chromium
from tests.support.postgres_server import PostgresServer

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
ADMIN = "llmg_bench_admin_key"
TARGET_MS = 300.0


def row(i: int, start: float, rng: random.Random) -> RequestRow:
    latency = rng.lognormvariate(6.5, 0.8)
    return RequestRow(
        request_id=f"r{i}",
        ts=start + rng.random() * 30 * 86400,
        api="chat",
        key_name=f"team{i % 20}/k{i % 3}",
        owner=f"team{i % 20}",
        tenant=None,
        end_user=f"u{i % 500}",
        agent=None,
        alias=("fast", "smart", "cheap")[i % 3],
        provider=("openai", "anthropic", "gemini")[i % 3],
        route_model="m",
        attempts=1,
        failed_attempts=(),
        outcome="error" if i % 50 == 0 else "ok",
        http_status=200,
        error_type=None,
        error_message=None,
        streamed=bool(i % 2),
        cached=i % 17 == 0,
        prompt_tokens=rng.randint(10, 4000),
        completion_tokens=rng.randint(1, 800),
        cached_tokens=0,
        usage_estimated=False,
        cost_nano=rng.randint(1000, 900000),
        saved_cost_nano=0,
        latency_ms=latency,
        ttft_ms=latency / 3,
        overhead_ms=0.3,
        client_ip="127.0.0.1",
        user_agent="bench",
    )


async def fill(storage: StorageConfig, start: float) -> float:
    writer = log_writer(storage, close_timeout_s=900)  # a bench's million rows, not a shutdown
    await writer.start()
    rng = random.Random(7)
    began = time.perf_counter()
    for i in range(ROWS):
        writer.enqueue(row(i, start, rng))
        if i % 20000 == 0:
            await asyncio.sleep(0)
    await writer.close()
    assert writer.rows_written == ROWS, writer.rows_written
    return time.perf_counter() - began


def timed(url: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN}"})
    samples = []
    for _ in range(5):
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            assert response.status == 200
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


async def dashboard_timings(url: str) -> tuple[float, float]:
    """First contentful paint of /dashboard, and the time until an admin signed in sees
    every section of this month filled, in headless Chromium."""
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(url)
        paint = await page.evaluate(FIRST_PAINT)
        await page.fill("#key", ADMIN)
        began = time.perf_counter()
        await page.press("#key", "Enter")
        await page.wait_for_selector("#status:has-text('Updated')", timeout=60_000)
        return float(paint), (time.perf_counter() - began) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "big.db"
        run("sqlite", f'database = "{database}"')
    server = PostgresServer().start()
    try:
        url = server.create_database()
        run("postgresql", f'backend = "postgresql"\nurl = "{url}"')
    finally:
        server.remove()


def run(engine: str, storage_toml: str) -> None:
    import subprocess
    import tomllib

    settings = tomllib.loads(storage_toml)
    storage = StorageConfig(**settings, batch_size=5000, flush_interval_ms=50, queue_limit=ROWS + 1)
    start = time.time() - 30 * 86400
    seconds = asyncio.run(fill(storage, start))
    print(
        f"{engine}: wrote {ROWS:,} rows (with roll-ups) in {seconds:.1f}s "
        f"({ROWS / seconds:,.0f} rows/s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        digest = hashlib.sha256(ADMIN.encode()).hexdigest()
        config = Path(tmp) / "gateway.toml"
        config.write_text(
            f'[[keys]]\nname = "ops"\nkey_sha256 = "{digest}"\nadmin = true\n'
            f'[storage]\n{storage_toml}\n[logging]\nlevel = "warning"\n'
        )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--port", str(port)],
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz", timeout_s=60)
            base = f"http://127.0.0.1:{port}/api/usage"
            month = f"since={start:.0f}"
            checks = {
                "summary, a month, everyone": f"{base}/summary?{month}",
                "summary, a month, one user": f"{base}/summary?{month}&user=team3",
                "chart: cost per day": f"{base}/charts?type=cost&bucket=day&{month}",
                "chart: tokens per hour": f"{base}/charts?type=tokens&bucket=hour&{month}",
                "chart: requests by model": f"{base}/charts?type=requests_by_model&{month}",
                "chart: latency percentiles": f"{base}/charts?type=latency&bucket=day&{month}",
                "request log, newest 50": f"{base}/requests?{month}",
                "request log, one user's errors": f"{base}/requests?{month}&owner=team4"
                "&outcome=error",
            }
            for label, url in checks.items():
                ms = timed(url)
                verdict = "PASS" if ms <= TARGET_MS else "FAIL"
                print(f"  {verdict}  {engine}, {label}: {ms:.1f} ms (target <= {TARGET_MS:g} ms)")
            paint, loaded = asyncio.run(dashboard_timings(f"http://127.0.0.1:{port}/dashboard"))
            verdict = "PASS" if paint <= TARGET_MS else "FAIL"
            print(
                f"  {verdict}  {engine}, dashboard first paint: {paint:.0f} ms "
                f"(target <= {TARGET_MS:g} ms); every section of this month loaded: "
                f"{loaded:.0f} ms"
            )
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
