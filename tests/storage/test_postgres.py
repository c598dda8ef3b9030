"""PostgreSQL storage on a real server: the writer, the migrations, the accounts, and every
usage query answering exactly what the same rows give on SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from proxy.accounts.credentials import CredentialStore, cipher
from proxy.accounts.store import AccountStore
from proxy.config import DEV_KEY
from proxy.errors import InvalidRequest
from proxy.storage.alerts import fired_alerts, remember_alert
from proxy.storage.database import Database, SQLiteDatabase
from proxy.storage.postgres import PostgresDatabase, PostgresLogWriter, numbered
from proxy.storage.postgres_schema import MIGRATIONS
from proxy.storage.request_log import write_batch
from proxy.storage.responses import ResponseStore
from proxy.storage.spend import month_spend
from proxy.storage.sqlite import SQLiteLogWriter
from proxy.storage.usage import UsageReader
from tests.conftest import GatewayFactory
from tests.storage.test_sqlite import NOW, enqueue_concurrently, row
from tests.support.configs import admin_key, alias, gateway_toml, provider
from tests.support.fake_openai import FakeOpenAI
from tests.support.postgres_server import PostgresServer

ADMIN = "llmg_admin_for_postgres_tests"


async def fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[PostgresDatabase]:
    db = await PostgresDatabase.open(postgres_url)
    yield db
    await db.close()


def test_placeholders_are_numbered_outside_literals() -> None:
    sql = "SELECT '?' || a FROM t WHERE b = ? AND c = 'x?y' AND d IN (?, ?)"
    assert numbered(sql) == "SELECT '?' || a FROM t WHERE b = $1 AND c = 'x?y' AND d IN ($2, $3)"


async def test_instances_starting_together_migrate_once(postgres_url: str) -> None:
    opened = await asyncio.gather(*(PostgresDatabase.open(postgres_url) for _ in range(4)))
    for db in opened:
        await db.close()
    names = await fetch(postgres_url, "SELECT name FROM _migrations ORDER BY name")
    assert names == [(name,) for name, _ in MIGRATIONS]


async def test_many_concurrent_rows_are_all_written_with_matching_rollups(
    postgres_url: str,
) -> None:
    writer = PostgresLogWriter(postgres_url, batch_size=100, flush_interval_ms=10)
    await writer.start()
    await enqueue_concurrently(writer)
    await writer.close()
    assert writer.rows_written == 5000 and writer.rows_dropped == 0
    raw = await fetch(
        postgres_url,
        """
        SELECT floor(ts / 3600)::BIGINT * 3600, COALESCE(key_name, ''),
               COALESCE(owner, ''), alias, count(*), sum((outcome != 'ok')::INT),
               sum(prompt_tokens), sum(completion_tokens), COALESCE(sum(cost_nano), 0),
               sum((cost_nano IS NULL)::INT), sum(cached)
        FROM requests GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
    )
    rolled = await fetch(
        postgres_url,
        """
        SELECT hour, key_name, owner, alias, requests, errors, prompt_tokens,
               completion_tokens, cost_nano, unknown_cost_requests, cache_hits
        FROM usage_hourly ORDER BY 1, 2, 3, 4""",
    )
    assert [tuple(int(v) if isinstance(v, Decimal) else v for v in r) for r in raw] == rolled
    assert len(rolled) > 1


async def test_a_batch_written_twice_counts_once_and_a_refused_row_is_dead_lettered(
    postgres_url: str,
) -> None:
    writer = PostgresLogWriter(postgres_url, flush_interval_ms=10, batch_size=50)
    await writer.start()
    for i in range(1, 101):
        writer.enqueue(row(i, prompt_tokens=2**63) if i == 37 else row(i))
    writer.enqueue(row(5))  # the same request id again: ignored, as on SQLite
    await writer.close()
    stored = {r[0] for r in await fetch(postgres_url, "SELECT request_id FROM requests")}
    assert stored == {f"r{i}" for i in range(1, 101)} - {"r37"}
    assert writer.rows_dead_lettered == 1


async def test_rows_wait_while_the_server_is_down_and_are_written_when_it_returns(
    tmp_path: Path,
) -> None:
    server = PostgresServer().start()
    try:
        url = server.create_database()
        writer = PostgresLogWriter(url, batch_size=10, flush_interval_ms=10)
        await writer.start()
        for i in range(20):
            writer.enqueue(row(i))
        await asyncio.sleep(0.3)
        server.stop()
        started = time.perf_counter()
        for i in range(20, 60):
            assert writer.enqueue(row(i))  # never blocks on the database
        assert time.perf_counter() - started < 0.05
        await asyncio.sleep(1.0)
        assert writer.batches_failed >= 1 and writer.queue_depth == 40
        server.start()
        await writer.close()
        assert await fetch(url, "SELECT count(*) FROM requests") == [(60,)]
        assert await fetch(url, "SELECT SUM(requests)::BIGINT FROM usage_hourly") == [(60,)]
    finally:
        server.remove()


async def test_retention_prunes_old_rows_and_rollups(postgres_url: str) -> None:
    writer = PostgresLogWriter(postgres_url, flush_interval_ms=10, retention_days=1)
    await writer.start()
    writer.enqueue(row(1, ts=NOW - 3 * 86400))
    writer.enqueue(row(2, ts=NOW))
    await asyncio.sleep(0.2)
    deleted = await writer.prune_now()
    await writer.close()
    assert deleted == 2
    assert await fetch(postgres_url, "SELECT request_id FROM requests") == [("r2",)]


async def _seed(writer: PostgresLogWriter | SQLiteLogWriter, count: int) -> None:
    await writer.start()
    for i in range(count):
        writer.enqueue(row(i, ts=NOW - i * 1700, http_status=(200, 429, 502)[i % 3]))
    await writer.close()


async def _answers(db: Database) -> list[object]:
    usage = UsageReader(db)
    since, until = NOW - 40 * 86400, NOW + 1
    answers: list[object] = []
    for owner in (None, "team"):
        for group in (None, "provider", "alias"):
            answers.append(await usage.totals(since, until, owner, group))
        for kind in ("cost", "tokens", "latency", "requests_by_model"):
            for step in (3600, 86400):
                answers.append(await usage.chart(kind, step, since, until, owner))
        page = await usage.requests(since, until, {"alias": "b"}, None, owner, None, 25)
        answers.append(page)
        last = page[-1]
        after = (last["ts"], last["rowid"])
        answers.append(await usage.requests(since, until, {}, 429, owner, after, 25))
        answers.append(await usage.request("r10", owner))
    for granularity in ("day", "month"):
        answers.append(await usage.spend_history("team", granularity))
    answers.append(await usage.provider_health(since))
    answers.append(await month_spend(db, NOW))
    return [_plain(a) for a in answers]


def _plain(value: object) -> object:
    """Rows as lists of plain values, whichever driver read them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "Record":
        return [_plain(v) for v in value]  # type: ignore[union-attr]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


async def test_every_usage_query_answers_as_on_sqlite(postgres_url: str, tmp_path: Path) -> None:
    path = str(tmp_path / "same.db")
    await _seed(SQLiteLogWriter(path, batch_size=97), 2000)
    await _seed(PostgresLogWriter(postgres_url, batch_size=97), 2000)
    lite = await SQLiteDatabase.open(path)
    pg = await PostgresDatabase.open(postgres_url)
    try:
        expected, got = await _answers(lite), await _answers(pg)
    finally:
        await lite.close()
        await pg.close()
    assert any(expected) and len(expected) == len(got)
    for want, have in zip(expected, got, strict=True):
        assert have == want


async def test_accounts_credentials_and_alerts(pg: PostgresDatabase) -> None:
    store = AccountStore(pg)
    await store.create_user("team", Decimal("5"))
    created = await store.create_key("team", "ci", rpm=10, models=["mini"])
    assert (await store.key_by_digest(created.record.sha256)) == created.record
    with pytest.raises(InvalidRequest, match="already has a key named"):
        await store.create_key("team", "ci")
    revoked = await store.revoke_key(created.record.id)
    assert not revoked.active and await store.usable_keys() == []
    assert await store.version() == 3

    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    credentials = CredentialStore(pg, cipher(key), "K")
    await credentials.put("team", "openai", "sk-first-secret-value")
    await credentials.put("team", "openai", "sk-second-secret-value")
    assert await credentials.secrets() == {("team", "openai"): "sk-second-secret-value"}
    await credentials.verify()

    fact = ("2026-11", "user", "team", 0.5)
    await remember_alert(pg, fact, None)
    await remember_alert(pg, fact, None)  # a second firing is the same fact
    assert await fired_alerts(pg) == {fact}
    actions = [r[3] for r in await UsageReader(pg).audit("team")]
    assert actions.count("credential.stored") == 1 and actions.count("credential.updated") == 1
    assert actions.count("budget.threshold_crossed") == 2


async def test_stored_responses_chain_and_expire(pg: PostgresDatabase) -> None:
    store = ResponseStore(pg, retention_days=1, flush_interval_s=0.01)
    store.save("user:a", None, [{"role": "user"}], {"id": "resp_1", "output": [{"n": 1}]})
    store.save("user:a", "resp_1", [{"role": "user"}], {"id": "resp_2", "output": [{"n": 2}]})
    await store.flush()
    fresh = ResponseStore(pg, retention_days=1, flush_interval_s=0.01)
    items = await fresh.history("resp_2", "user:a")
    assert items == [{"role": "user"}, {"n": 1}, {"role": "user"}, {"n": 2}]
    assert await fresh.history("resp_2", "user:b") is None
    assert await fresh.delete("resp_1", "user:a")
    assert await fresh.history("resp_2", "user:a") is None
    assert await fresh.purge() == 0


async def test_a_gateway_rides_out_a_database_outage(
    gateway_factory: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    """PostgreSQL stopped under a running gateway: requests are still answered (their rows
    wait), the management API says 503 with Retry-After instead of failing, and both
    recover when the server returns."""
    server = PostgresServer().start()
    try:
        url = server.create_database()
        gw = await gateway_factory(
            gateway_toml(
                provider("up", fake_openai.url, kind="openai", api_key_env="UP_KEY"),
                alias("m", ("up", "gpt-4o-mini")),
                f'[storage]\nbackend = "postgresql"\nurl = "{url}"\nflush_interval_ms = 10\n',
                admin_key(ADMIN),
            ),
            env={"UP_KEY": "sk-up"},
        )
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with gw.http() as http:
            auth = {"Authorization": f"Bearer {DEV_KEY}"}
            assert (await http.post("/v1/chat/completions", json=body, headers=auth)).is_success
            server.stop()
            during = [
                await http.post("/v1/chat/completions", json=body, headers=auth) for _ in range(5)
            ]
            assert {r.status_code for r in during} == {200}
            admin = {"Authorization": f"Bearer {ADMIN}"}
            summary = await http.get("/api/usage/summary", headers=admin)
            assert summary.status_code == 503, summary.text
            assert summary.json()["error"]["code"] == "storage_unavailable"
            assert summary.headers["retry-after"] == "1"
            server.start()
            for _ in range(100):
                summary = await http.get("/api/usage/summary", headers=admin)
                if summary.status_code == 200 and summary.json()["requests"] == 6:
                    break
                await asyncio.sleep(0.1)
            assert summary.status_code == 200 and summary.json()["requests"] == 6
    finally:
        server.remove()


async def test_a_nul_from_a_caller_does_not_keep_the_row_out(postgres_url: str) -> None:
    writer = PostgresLogWriter(postgres_url, flush_interval_ms=10)
    await writer.start()
    writer.enqueue(row(1, end_user="a\x00b", alias="m\x00", user_agent="\x00", cost_nano=5))
    await writer.close()
    assert writer.rows_dead_lettered == 0
    stored = await fetch(postgres_url, "SELECT end_user, alias FROM requests")
    assert stored == [("a\ufffdb", "m\ufffd")]
    assert await fetch(postgres_url, "SELECT alias, cost_nano FROM usage_hourly") == [
        ("m\ufffd", 5)
    ]


async def test_a_batch_written_again_after_a_lost_commit_counts_once(pg: PostgresDatabase) -> None:
    batch = [(row(i, cost_nano=100), None) for i in range(20)]
    async with pg.transaction() as tx:
        await write_batch(tx, batch)
    async with pg.transaction() as tx:  # the retry of a batch whose commit went unanswered
        await write_batch(tx, [*batch, (row(20, cost_nano=100), None)], uncertain=True)
    assert await pg.fetchone("SELECT COUNT(*) FROM requests") == (21,)
    totals = await pg.fetchone("SELECT SUM(requests), SUM(cost_nano) FROM usage_hourly")
    assert tuple(totals) == (21, 2100)
