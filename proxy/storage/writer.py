"""The request log's writer: the request path enqueues, one background task writes.

Like datasette's single writer, one task owns the write connection; unlike it, rows are
written in batches (every `flush_interval_ms`, or at once when `batch_size` rows wait),
each batch and its hourly roll-ups in one transaction. The queue is bounded: past
`queue_limit` rows are dropped, counted and logged, so a stuck database never blocks or
bloats the gateway. A batch that fails because of the database (a locked file, a lost
connection, a full disk) stays queued and is retried; a batch that fails because of a row
in it is split until the row is found, the rest are written, and the bad row goes to a
`log_row_dead_lettered` line (with the whole row, so nothing is lost) and a counter.

An engine supplies the connection, the transaction, a prune step and which of its errors
are the database's rather than a row's: `SQLiteLogWriter`, `PostgresLogWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import TypedDict, Unpack

import orjson
import structlog

from proxy.storage.request_log import Batch
from proxy.storage.rows import DebugRow, RequestRow

log = structlog.get_logger("proxy.logwriter")

RETRY_DELAY_S = 0.2
PRUNE_EVERY_S = 3600.0
PRUNE_CHUNK = 5000
CLOSE_TIMEOUT_S = 10.0
DROP_LOG_EVERY_S = 5.0
BACKLOG_BATCH = 5000
ISOLATION_RETRIES = 25
# Rows and roll-ups older than the retention period, by the column that dates them.
PRUNED = (("requests", "ts", 1), ("debug_bodies", "ts", 1), ("usage_hourly", "hour", 3600))


class WriterOptions(TypedDict, total=False):
    batch_size: int
    flush_interval_ms: float
    queue_limit: int
    retention_days: float
    close_timeout_s: float


@dataclass(slots=True)
class Settled:
    """Rows of a batch done with (written, or dead-lettered), from its start."""

    rows: int = 0
    written: int = 0

    def add(self, rows: int, written: int) -> None:
        self.rows += rows
        self.written += written


class BatchedLogWriter(ABC):
    def __init__(self, **options: Unpack[WriterOptions]) -> None:
        self._close_timeout_s = options.get("close_timeout_s", CLOSE_TIMEOUT_S)
        self._batch_size = options.get("batch_size", 200)
        self._interval_s = options.get("flush_interval_ms", 500) / 1000
        self._queue_limit = options.get("queue_limit", 100_000)
        self._retention_s = options.get("retention_days", 90) * 86400
        self._queue: deque[tuple[RequestRow, DebugRow | None]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._dead = 0
        self._last_drop_log = 0.0
        self._last_prune = 0.0
        self._uncertain = False  # the last attempt failed and may have committed

    # What an engine supplies.

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def _write(self, batch: Batch, uncertain: bool) -> None:
        """Write the batch and its roll-ups in one transaction, or nothing. `uncertain`:
        an earlier attempt failed and may have committed; rows already there are skipped
        (roll-ups included)."""

    @abstractmethod
    async def _delete_before(self, table: str, column: str, bound: float, limit: int) -> int:
        """Delete up to `limit` rows dated before `bound`; return how many."""

    @abstractmethod
    def _is_transient(self, error: Exception) -> bool:
        """True when the database failed (retry the batch), not a row in it."""

    @abstractmethod
    def _is_refusal(self, error: Exception) -> bool:
        """True when the database refused a value in the batch."""

    # The log sink.

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
        await self._connect()
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
            finally:
                await self._disconnect()
        else:
            await self._disconnect()

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
        settled = Settled()
        try:
            await self._write(batch, self._uncertain)
            settled.add(len(batch), len(batch))
        except Exception as exc:
            self._failed += 1
            if not self._refused(exc):
                # Locked, busy, gone, disk full, or a failure nobody foresaw: keep the rows
                # and try again (a writer that died would lose every row after this one).
                # The commit may have gone through unanswered: the retry checks.
                self._uncertain = True
                log.warning("log_batch_failed", rows=len(batch), error=repr(exc))
                return False
            log.warning("log_batch_refused", rows=len(batch), error=str(exc))
            try:
                await self._isolate(batch, exc, settled)
            except Exception as interrupted:  # the database went away meanwhile
                self._uncertain = True
                log.warning("log_isolation_interrupted", error=repr(interrupted))
                self._settle(settled)
                return False
        self._uncertain = False
        self._settle(settled)
        return True

    def _refused(self, error: Exception) -> bool:
        """The database refused a value of the batch (it is up, and said no)."""
        return self._is_refusal(error) and not self._is_transient(error)

    def _settle(self, settled: Settled) -> None:
        for _ in range(settled.rows):
            self._queue.popleft()
        self._written += settled.written

    async def _isolate(self, batch: Batch, error: Exception, settled: Settled) -> None:
        """Write what the database accepts of a refused batch, halving it down to the bad
        rows, left to right, so what is settled is always a prefix of the batch. Raises
        when the database itself fails meanwhile; the rest then stays queued."""
        if len(batch) == 1:
            self._dead_letter(batch[0][0], error)
            settled.add(1, 0)
            return
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            try:
                await self._write_retrying(half)
                settled.add(len(half), len(half))
            except Exception as exc:
                if not self._refused(exc):
                    raise
                await self._isolate(half, exc, settled)

    async def _write_retrying(self, batch: Batch) -> None:
        uncertain = False
        for _ in range(ISOLATION_RETRIES):
            try:
                await self._write(batch, uncertain)
                return
            except Exception as exc:
                if self._refused(exc):
                    raise
                uncertain = True
                await asyncio.sleep(RETRY_DELAY_S)
        await self._write(batch, True)

    def _dead_letter(self, row: RequestRow, error: Exception) -> None:
        self._dead += 1
        log.error(
            "log_row_dead_lettered",
            request_id=row.request_id,
            error=str(error),
            row=orjson.dumps(dataclasses.asdict(row), default=str).decode(),
        )

    async def prune_now(self) -> int:
        """Delete rows and roll-ups older than the retention period; return rows deleted."""
        self._last_prune = time.monotonic()
        cutoff = time.time() - self._retention_s
        deleted = 0
        for table, column, unit in PRUNED:
            bound = int(cutoff // unit * unit) if unit > 1 else cutoff
            while True:
                # Small chunks, so no lock is held for long.
                count = await self._delete_before(table, column, bound, PRUNE_CHUNK)
                deleted += count
                if count < PRUNE_CHUNK:
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
