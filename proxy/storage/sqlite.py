"""The SQLite request log: the request path enqueues, one background task writes.

Like datasette's single writer, one task owns the write connection; unlike it, rows are
written in batches (every `flush_interval_ms`, or at once when `batch_size` rows wait),
each batch and its hourly roll-ups in one transaction. The queue is bounded: past
`queue_limit` rows are dropped, counted and logged, so a stuck disk never blocks or
bloats the gateway. A batch that fails because of the database (the file locked by
another process, say) stays queued and is retried; a batch that fails because of a row
in it is split until the row is found, the rest are written, and the bad row goes to a
`log_row_dead_lettered` line (with the whole row, so nothing is lost) and a counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
import orjson
import structlog

from proxy.storage.migrations import open_database
from proxy.storage.rollup import SUM_COLUMNS, aggregate, upsert_sql
from proxy.storage.rows import DebugRow, RequestRow

log = structlog.get_logger("proxy.logwriter")

RETRY_DELAY_S = 0.2
PRUNE_EVERY_S = 3600.0
PRUNE_CHUNK = 5000
CLOSE_TIMEOUT_S = 10.0
DROP_LOG_EVERY_S = 5.0
BACKLOG_BATCH = 5000
ISOLATION_RETRIES = 25

_INSERT_REQUEST = (
    "INSERT OR IGNORE INTO requests (request_id, ts, api, key_name, owner, tenant, "
    "end_user, agent, alias, provider, route_model, attempts, failed_attempts, outcome, "
    "http_status, error_type, error_message, streamed, cached, prompt_tokens, "
    "completion_tokens, cached_tokens, usage_estimated, cost_nano, saved_cost_nano, "
    "latency_ms, ttft_ms, overhead_ms, client_ip, user_agent, key_ref, client_request_id) "
    f"VALUES ({', '.join('?' * 32)})"
)
_INSERT_DEBUG = (
    "INSERT OR REPLACE INTO debug_bodies (request_id, ts, request_headers, request_body, "
    "response_headers, response_body, truncated) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class SQLiteLogWriter:
    def __init__(
        self,
        path: str,
        *,
        batch_size: int = 200,
        flush_interval_ms: float = 500,
        queue_limit: int = 100_000,
        retention_days: float = 90,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self._close_timeout_s = close_timeout_s
        self.path = path
        self._batch_size = batch_size
        self._interval_s = flush_interval_ms / 1000
        self._queue_limit = queue_limit
        self._retention_s = retention_days * 86400
        self._queue: deque[tuple[RequestRow, DebugRow | None]] = deque()
        self._wake = asyncio.Event()
        self._db: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._dead = 0
        self._last_drop_log = 0.0
        self._last_prune = 0.0

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def rows_written(self) -> int:
        return self._written

    @property
    def rows_dropped(self) -> int:
        return self._dropped

    @property
    def batches_failed(self) -> int:
        return self._failed

    @property
    def rows_dead_lettered(self) -> int:
        return self._dead

    def enqueue(self, row: RequestRow, debug: DebugRow | None = None) -> bool:
        if len(self._queue) >= self._queue_limit:
            self._dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log >= DROP_LOG_EVERY_S:
                self._last_drop_log = now
                log.error(
                    "log_rows_dropped", total_dropped=self._dropped, queue_limit=self._queue_limit
                )
            return False
        self._queue.append((row, debug))
        if len(self._queue) >= self._batch_size:
            self._wake.set()
        return True

    async def start(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # A short busy timeout: a locked batch is better retried by us than waited on.
        self._db = await open_database(self.path, busy_timeout_ms=1000)
        await self.prune_now()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Flush every queued row (retrying for up to close_timeout_s), then close."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._close_timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                log.error("log_rows_lost_at_shutdown", rows=len(self._queue))
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _run(self) -> None:
        while True:
            if not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            while self._queue:
                if not await self._flush_batch():
                    await asyncio.sleep(RETRY_DELAY_S)
                    if not self._closing:
                        break
                elif len(self._queue) < self._batch_size and not self._closing:
                    break
            if self._closing and not self._queue:
                return
            if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
                await self._prune_logged()

    async def _flush_batch(self) -> bool:
        # Behind on a backlog, write bigger transactions: the per-transaction cost is paid
        # once for more rows, so the writer catches up instead of falling further behind.
        size = min(len(self._queue), max(self._batch_size, BACKLOG_BATCH))
        batch = [self._queue[i] for i in range(size)]
        try:
            await self._write(batch)
            written = len(batch)
        except sqlite3.OperationalError as exc:  # locked, busy, disk full: keep the rows
            self._failed += 1
            log.warning("log_batch_failed", rows=len(batch), error=str(exc))
            return False
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            self._failed += 1
            log.warning("log_batch_refused", rows=len(batch), error=str(exc))
            written = await self._isolate(batch, exc)
        for _ in batch:
            self._queue.popleft()
        self._written += written
        return True

    async def _isolate(
        self, batch: Sequence[tuple[RequestRow, DebugRow | None]], error: Exception
    ) -> int:
        """Write what the database accepts of a refused batch, halving it down to the bad
        rows; return how many were written."""
        if len(batch) == 1:
            self._dead_letter(batch[0][0], error)
            return 0
        written = 0
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            try:
                await self._write_retrying(half)
                written += len(half)
            except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
                written += await self._isolate(half, exc)
        return written

    async def _write_retrying(self, batch: Sequence[tuple[RequestRow, DebugRow | None]]) -> None:
        for _ in range(ISOLATION_RETRIES):
            try:
                await self._write(batch)
                return
            except sqlite3.OperationalError:
                await asyncio.sleep(RETRY_DELAY_S)
        await self._write(batch)

    def _dead_letter(self, row: RequestRow, error: Exception) -> None:
        self._dead += 1
        log.error(
            "log_row_dead_lettered",
            request_id=row.request_id,
            error=str(error),
            row=orjson.dumps(dataclasses.asdict(row), default=str).decode(),
        )

    async def _write(self, batch: Sequence[tuple[RequestRow, DebugRow | None]]) -> None:
        db = self._db
        assert db is not None
        rows = [row for row, _ in batch]
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.executemany(_INSERT_REQUEST, [_request_values(r) for r in rows])
            debug = [_debug_values(d) for _, d in batch if d is not None]
            if debug:
                await db.executemany(_INSERT_DEBUG, debug)
            rollups = aggregate(rows)
            await db.executemany(
                upsert_sql(),
                [(*key, *(r.sums[c] for c in SUM_COLUMNS)) for key, r in rollups.items()],
            )
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise

    async def prune_now(self) -> int:
        """Delete rows and roll-ups older than the retention period; return rows deleted."""
        db = self._db
        assert db is not None
        self._last_prune = time.monotonic()
        cutoff = time.time() - self._retention_s
        deleted = 0
        for table, column, bound in (
            ("requests", "ts", cutoff),
            ("debug_bodies", "ts", cutoff),
            ("usage_hourly", "hour", cutoff // 3600 * 3600),
        ):
            while True:
                # Small chunks, so the write lock is never held for long.
                cursor = await db.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {column} < ? LIMIT {PRUNE_CHUNK})",
                    (bound,),
                )
                deleted += cursor.rowcount
                if cursor.rowcount < PRUNE_CHUNK:
                    break
        return deleted

    async def _prune_logged(self) -> None:
        try:
            deleted = await self.prune_now()
        except Exception as exc:
            log.warning("log_prune_failed", error=str(exc))
        else:
            if deleted:
                log.info("log_pruned", rows=deleted)


def _request_values(r: RequestRow) -> tuple[object, ...]:
    failed = orjson.dumps([[a.provider, a.model, a.reason, a.status] for a in r.failed_attempts])
    return (
        r.request_id,
        r.ts,
        r.api,
        r.key_name,
        r.owner,
        r.tenant,
        r.end_user,
        r.agent,
        r.alias,
        r.provider,
        r.route_model,
        r.attempts,
        failed.decode() if r.failed_attempts else None,
        r.outcome,
        r.http_status,
        r.error_type,
        r.error_message,
        int(r.streamed),
        int(r.cached),
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
        int(r.usage_estimated),
        r.cost_nano,
        r.saved_cost_nano,
        r.latency_ms,
        r.ttft_ms,
        r.overhead_ms,
        r.client_ip,
        r.user_agent,
        r.key_ref,
        r.client_request_id,
    )


def _debug_values(d: DebugRow) -> tuple[object, ...]:
    return (
        d.request_id,
        d.ts,
        orjson.dumps(d.request_headers).decode(),
        d.request_body,
        orjson.dumps(d.response_headers).decode(),
        d.response_body,
        int(d.truncated),
    )
