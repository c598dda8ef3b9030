"""The batched SQLite writer on real files: counts, roll-ups, overflow, locks, retention."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.storage.migrations import MIGRATIONS, open_database
from proxy.storage.rollup import BUCKET_COLUMNS
from proxy.storage.rows import FailedAttempt, RequestRow
from proxy.storage.sqlite import SQLiteLogWriter
from proxy.storage.writer import BatchedLogWriter

NOW = time.time()


def row(i: int, **changes: object) -> RequestRow:
    base = RequestRow(
        request_id=f"r{i}",
        ts=NOW - (i % 3) * 3600,
        api="chat",
        key_name=f"k{i % 2}",
        owner="team" if i % 2 else None,
        tenant=None,
        end_user=None,
        agent=None,
        alias=("a", "b")[i % 2],
        provider="p",
        route_model="m",
        attempts=1,
        failed_attempts=(FailedAttempt("x", "y", "HTTP 503", 503),) if i % 5 == 0 else (),
        outcome="error" if i % 7 == 0 else "ok",
        http_status=200,
        error_type=None,
        error_message=None,
        streamed=False,
        cached=i % 11 == 0,
        prompt_tokens=i,
        completion_tokens=2 * i,
        cached_tokens=i % 3,
        usage_estimated=False,
        cost_nano=None if i % 13 == 0 else 1000 + i,
        saved_cost_nano=0,
        latency_ms=float(i % 400) * 37,
        ttft_ms=None if i % 2 else 5.0,
        overhead_ms=0.2,
        client_ip="127.0.0.1",
        user_agent="t",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def enqueue_concurrently(writer: BatchedLogWriter, producers: int = 5) -> None:
    """Rows r0 to r<producers * 1000>, from several tasks at once, as requests would."""

    async def producer(start: int) -> None:
        for i in range(start, start + 1000):
            assert writer.enqueue(row(i))
            if i % 50 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(producer(n * 1000) for n in range(producers)))


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


async def test_many_concurrent_rows_are_all_written_with_matching_rollups(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), batch_size=100, flush_interval_ms=10)
    await writer.start()
    await enqueue_concurrently(writer)
    await writer.close()
    assert writer.rows_written == 5000 and writer.rows_dropped == 0
    assert query(db, "SELECT count(*) FROM requests") == [(5000,)]
    assert_rollups_match(db)
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    # NULLs (bound through the writing process's adapter for None) are SQL NULLs.
    nulls = "SELECT typeof(tenant), typeof(ttft_ms), count(*) FROM requests GROUP BY 1, 2"
    assert query(db, nulls) == [("null", "null", 2500), ("null", "real", 2500)]


def assert_rollups_match(db: Path) -> None:
    """The hourly roll-ups say what the raw rows say: every row counted once."""
    raw = query(
        db,
        """
        SELECT CAST(ts / 3600 AS INTEGER) * 3600, COALESCE(key_name, ''), COALESCE(owner, ''),
               alias, count(*), sum(outcome != 'ok'), sum(prompt_tokens),
               sum(completion_tokens), COALESCE(sum(cost_nano), 0), sum(cost_nano IS NULL),
               sum(cached)
        FROM requests GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
    )
    rolled = query(
        db,
        """
        SELECT hour, key_name, owner, alias, requests, errors, prompt_tokens,
               completion_tokens, cost_nano, unknown_cost_requests, cache_hits
        FROM usage_hourly ORDER BY 1, 2, 3, 4""",
    )
    assert raw == rolled
    buckets = " + ".join(BUCKET_COLUMNS)
    assert query(db, f"SELECT sum({buckets}) = sum(requests) FROM usage_hourly") == [(1,)]


async def test_the_writing_process_killed_under_load_loses_and_doubles_no_row(
    tmp_path: Path,
) -> None:
    """The batch in flight when the process dies may or may not have committed: it is
    retried as uncertain by a new process, so each row is written once, roll-ups too."""
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), batch_size=50, flush_interval_ms=5)
    await writer.start()
    first = writer.process_id
    assert first is not None

    async def kill_midway() -> None:
        while writer.rows_written < 1000:
            await asyncio.sleep(0.001)
        os.kill(first, signal.SIGKILL)

    await asyncio.gather(enqueue_concurrently(writer), kill_midway())
    while writer.queue_depth:
        await asyncio.sleep(0.01)
    second = writer.process_id
    await writer.close()
    assert second not in (None, first)
    assert writer.rows_written == 5000 and writer.rows_dead_lettered == 0
    assert query(db, "SELECT count(*) FROM requests") == [(5000,)]
    assert_rollups_match(db)


async def test_the_writing_process_ignores_sigterm_and_ends_when_the_writer_closes(
    tmp_path: Path,
) -> None:
    """systemd and a terminal signal the gateway's whole process group: the writing
    process must outlive the signal, so the gateway can flush its queue through it."""
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), flush_interval_ms=60_000)
    await writer.start()
    pid = writer.process_id
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    for i in range(100):
        writer.enqueue(row(i))
    await asyncio.sleep(0.1)
    os.kill(pid, 0)  # still there
    await writer.close()
    assert writer.batches_failed == 0 and writer.process_id is None
    assert query(db, "SELECT count(*) FROM requests") == [(100,)]
    with pytest.raises(ProcessLookupError):  # exited, and reaped
        os.kill(pid, 0)


async def test_a_file_that_cannot_be_opened_fails_the_start_with_sqlites_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "log.db").write_bytes(b"not a database, just bytes " * 100)
    writer = SQLiteLogWriter(str(tmp_path / "log.db"))
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        await writer.start()
    assert writer.process_id is None


async def test_unknown_cost_stays_null(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), flush_interval_ms=10)
    await writer.start()
    writer.enqueue(row(13))
    await writer.close()
    assert query(db, "SELECT cost_nano FROM requests") == [(None,)]
    assert query(db, "SELECT cost_nano, unknown_cost_requests FROM usage_hourly") == [(0, 1)]


async def test_overflow_is_counted_not_silent_and_never_blocks(tmp_path: Path) -> None:
    writer = SQLiteLogWriter(str(tmp_path / "log.db"), queue_limit=10)
    started = time.perf_counter()
    results = [writer.enqueue(row(i)) for i in range(25)]
    assert (time.perf_counter() - started) / 25 < 0.001
    assert results.count(True) == 10 and writer.rows_dropped == 15
    assert writer.queue_depth == 10


async def test_close_flushes_everything_queued(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), batch_size=7, flush_interval_ms=60_000)
    await writer.start()
    for i in range(100):
        writer.enqueue(row(i))
    await writer.close()
    assert query(db, "SELECT count(*) FROM requests") == [(100,)]


async def test_database_locked_by_another_process_delays_but_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), batch_size=10, flush_interval_ms=10)
    await writer.start()
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None, timeout=10)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(2.5)\n"
            "c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as locker:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        slowest = 0.0
        for i in range(50):
            started = time.perf_counter()
            writer.enqueue(row(i))
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.01)
        assert slowest < 0.005
        await asyncio.to_thread(locker.wait, 20)
    await writer.close()
    assert writer.batches_failed >= 1
    assert query(db, "SELECT count(*) FROM requests") == [(50,)]


async def test_retention_prunes_old_rows_and_rollups(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), flush_interval_ms=10, retention_days=1)
    await writer.start()
    writer.enqueue(row(1, ts=NOW - 3 * 86400))
    writer.enqueue(row(2, ts=NOW))
    await asyncio.sleep(0.1)
    deleted = await writer.prune_now()
    await writer.close()
    assert deleted == 2  # the old raw row and its roll-up
    assert query(db, "SELECT request_id FROM requests") == [("r2",)]
    assert len(query(db, "SELECT * FROM usage_hourly")) == 1


async def test_migrations_apply_once(tmp_path: Path) -> None:
    path = str(tmp_path / "log.db")
    for _ in range(2):
        db = await open_database(path)
        await db.close()
    names = query(tmp_path / "log.db", "SELECT name FROM _migrations ORDER BY name")
    assert names == [(name,) for name, _ in MIGRATIONS]


async def test_a_refused_row_is_dead_lettered_and_the_rest_are_written(tmp_path: Path) -> None:
    """One row the database cannot take (a 64-bit overflow) must not poison the writer."""
    db = tmp_path / "log.db"
    writer = SQLiteLogWriter(str(db), flush_interval_ms=10, batch_size=50)
    await writer.start()
    for i in range(1, 101):
        writer.enqueue(row(i, prompt_tokens=2**63) if i == 37 else row(i))
    await asyncio.sleep(0.3)
    for i in range(101, 111):  # later batches still go through
        writer.enqueue(row(i))
    await writer.close()
    stored = {r[0] for r in query(db, "SELECT request_id FROM requests")}
    assert stored == {f"r{i}" for i in range(1, 111)} - {"r37"}
    assert writer.rows_dead_lettered == 1 and writer.rows_written == 109
    requests = query(db, "SELECT SUM(requests) FROM usage_hourly")[0][0]
    assert requests == 109  # the roll-ups count exactly the rows written


async def test_the_key_id_migration_maps_earlier_rollups_to_key_ids(tmp_path: Path) -> None:
    import aiosqlite

    from proxy.storage import migrations

    path = tmp_path / "old.db"
    upto = [m for m in MIGRATIONS if m[0] < "006"]
    conn = await aiosqlite.connect(path, isolation_level=None)
    original = migrations.MIGRATIONS
    migrations.MIGRATIONS = upto
    try:
        await migrations.migrate(conn)
    finally:
        migrations.MIGRATIONS = original
    await conn.execute("INSERT INTO users (name, created_at) VALUES ('team', 0)")
    await conn.execute(
        "INSERT INTO api_keys (name, user_name, sha256, prefix, created_at) "
        "VALUES ('svc', 'team', 'ab', 'llmg_x', 0)"
    )
    values = ", ".join(["1"] * 12 + ["0"] * len(BUCKET_COLUMNS))
    for name in ("team/svc", "dev", ""):
        await conn.execute(
            f"INSERT INTO usage_hourly VALUES (3600, '{name}', 'team', 'a', 'p', {values})"
        )
    await conn.close()
    db = await open_database(str(path))
    await db.close()
    refs = query(path, "SELECT key_name, key_ref FROM usage_hourly ORDER BY key_name")
    assert refs == [("", ""), ("dev", "static:dev"), ("team/svc", "key:1")]
