"""The generic batched writer against an engine whose failures a test can schedule: a
database that goes away in the middle of isolating a refused row, and a commit whose
answer was lost. (The real engines are tested on real files and servers beside this.)"""

from __future__ import annotations

import asyncio

import pytest

from proxy.storage import writer
from proxy.storage.request_log import Batch
from proxy.storage.writer import BatchedLogWriter
from tests.storage.test_sqlite import row

BAD = -1  # prompt_tokens the engine refuses, as a database refuses a value


class ScriptedEngine(BatchedLogWriter):
    """Keeps rows in a dict; refuses BAD rows; fails while `down`; can commit and then
    lose the answer once."""

    def __init__(self) -> None:
        super().__init__(batch_size=10, flush_interval_ms=5, close_timeout_s=5)
        self.rows: dict[str, int] = {}
        self.rollup_requests = 0
        self.down = False
        self.lose_next_answer = False
        self.calls = 0
        self.down_after_calls: int | None = None

    async def _connect(self) -> None:
        pass

    async def _disconnect(self) -> None:
        pass

    async def _write(self, batch: Batch, uncertain: bool) -> None:
        self.calls += 1
        if self.down_after_calls is not None and self.calls > self.down_after_calls:
            self.down = True
        if self.down:
            raise ConnectionRefusedError("the database is down")
        if any(r.prompt_tokens == BAD for r, _ in batch):
            raise ValueError("value refused")
        fresh = [r for r, _ in batch if not (uncertain and r.request_id in self.rows)]
        for r in fresh:
            self.rows[r.request_id] = r.prompt_tokens
        self.rollup_requests += len(fresh)
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise TimeoutError("committed, but the answer was lost")

    async def _delete_before(self, table: str, column: str, bound: float, limit: int) -> int:
        return 0

    def _is_transient(self, error: Exception) -> bool:
        return isinstance(error, (OSError, TimeoutError))

    def _is_refusal(self, error: Exception) -> bool:
        return isinstance(error, ValueError)


async def test_the_database_going_away_during_isolation_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer, "ISOLATION_RETRIES", 2)  # give up on a half sooner
    engine = ScriptedEngine()
    for i in range(10):
        engine.enqueue(row(i, prompt_tokens=BAD) if i == 7 else row(i))
    engine.down_after_calls = 3  # the batch, then two halves; then the database is gone
    await engine.start()
    for _ in range(100):
        if engine.batches_failed >= 2:  # refused, then interrupted
            break
        await asyncio.sleep(0.05)
    assert engine._task is not None and not engine._task.done()  # the writer lives on
    assert 0 < engine.queue_depth < 10  # what was settled left the queue, the rest waits
    engine.down = False
    engine.down_after_calls = None
    await engine.close()
    assert set(engine.rows) == {f"r{i}" for i in range(10)} - {"r7"}
    assert engine.rows_dead_lettered == 1 and engine.rows_written == 9
    assert engine.rollup_requests == 9


async def test_a_commit_whose_answer_was_lost_is_not_counted_twice() -> None:
    engine = ScriptedEngine()
    engine.lose_next_answer = True
    for i in range(10):
        engine.enqueue(row(i))
    await engine.start()
    await engine.close()
    assert len(engine.rows) == 10 and engine.batches_failed == 1
    assert engine.rollup_requests == 10  # the retry knew the first attempt might have landed
