"""Deadlines on the request path: they fire (a tick late at most), and only they turn
into TimeoutError; any other cancellation of the task stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from proxy import deadlines
from proxy.deadlines import TICK_S, Deadline


async def test_a_block_past_its_deadline_times_out_within_a_tick() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError), Deadline(started + 0.1):
        await asyncio.sleep(10)
    assert 0.1 <= loop.time() - started < 0.1 + TICK_S + 0.05
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_block_in_time_is_left_alone_and_the_ticker_stops() -> None:
    loop = asyncio.get_running_loop()
    with Deadline(loop.time() + 0.05):
        await asyncio.sleep(0)
    await asyncio.sleep(TICK_S * 3)  # past the deadline: nothing may cancel this task now
    ticker = deadlines._ticker(loop)
    assert not ticker.blocks and ticker._handle is None


async def test_a_deadline_already_past_fires_at_the_next_tick() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError), Deadline(loop.time() - 1):
        await asyncio.sleep(1)


async def test_the_inner_of_two_deadlines_is_the_one_that_fires() -> None:
    loop = asyncio.get_running_loop()
    with Deadline(loop.time() + 5) as outer:
        with pytest.raises(TimeoutError), Deadline(loop.time() + 0.05):
            await asyncio.sleep(5)
        await asyncio.sleep(TICK_S * 2)  # the outer one is still watched, and not due
    assert not outer._expired


async def test_another_cancellation_stays_a_cancellation() -> None:
    """The client leaves (its watcher cancels the task) in the same tick as the deadline
    passes: the request is cancelled, not timed out."""
    loop = asyncio.get_running_loop()
    outcome: list[str] = []

    async def request() -> None:
        try:
            with Deadline(loop.time() + 5):
                await asyncio.sleep(5)
        except TimeoutError:
            outcome.append("timeout")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = asyncio.create_task(request())
    await asyncio.sleep(0.01)
    (deadline,) = deadlines._ticker(loop).blocks
    deadline.expire()  # as the ticker would
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcome == ["cancelled"]


async def test_many_blocks_each_fire_once() -> None:
    loop = asyncio.get_running_loop()

    async def wait(seconds: float) -> str:
        try:
            with Deadline(loop.time() + seconds):
                await asyncio.sleep(0.3)
                return "done"
        except TimeoutError:
            return "timeout"

    results = await asyncio.gather(*(wait(0.1 if n % 2 else 1.0) for n in range(200)))
    assert results == ["done" if n % 2 == 0 else "timeout" for n in range(200)]


def test_outside_a_task_is_refused() -> None:
    with pytest.raises(RuntimeError), Deadline(0):
        pass
