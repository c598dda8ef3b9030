from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import RunningGateway
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer

GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    upstream = await FakeOpenAI().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def gateway_factory(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """Start gateways from TOML text; every one is stopped after the test."""
    running: list[RunningGateway] = []

    async def start(toml: str, env: dict[str, str] | None = None) -> RunningGateway:
        if "[storage]" not in toml:
            database = tmp_path / f"gateway-{len(running)}.db"
            toml += f'\n[storage]\ndatabase = "{database}"\nflush_interval_ms = 20\n'
        if "[cache]" not in toml:
            # Tests of upstream behaviour repeat identical requests; cache tests opt in.
            toml += "\n[cache]\nenabled = false\n"
        path = tmp_path / f"gateway-{len(running)}.toml"
        path.write_text(toml)
        gateway = await RunningGateway(path, env).start()
        running.append(gateway)
        return gateway

    yield start
    for gateway in reversed(running):
        await gateway.stop()


@pytest.fixture
async def second_openai() -> AsyncIterator[FakeOpenAI]:
    upstream = await FakeOpenAI().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    upstream = await FakeAnthropic().start()
    yield upstream
    await upstream.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A running Redis, empty for each test."""
    if redis_server.process is None:
        redis_server.start()  # a test stopped it
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A running PostgreSQL, with a new empty database for each test."""
    if postgres_server.process is None:
        postgres_server.start()  # a test stopped it
    return postgres_server.create_database()
