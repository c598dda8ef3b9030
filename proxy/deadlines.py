"""Timeouts on the request path, watched by one ticker per event loop, not a timer each.

`asyncio.timeout_at` arms and disarms a timer for every use: about 5 us under uvloop
(2.5 for the bare timer handle), and the request path uses one per upstream call and one
per awaited stream event. A `Deadline` only joins a set; while the set is not empty, a
ticker wakes every `TICK_S` and cancels the blocks whose time has passed. So a deadline
fires up to `TICK_S` late, which no timeout of the gateway (whole seconds, or tenths in
tests) notices, and a thousand open streams cost one wake-up per tick between them.

The cancellation is asyncio's own: the block's task is cancelled, and the block turns
that cancellation, and only that one, into `TimeoutError` on its way out. A task
cancelled for another reason meanwhile (its client left) stays cancelled.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

TICK_S = 0.05


class Deadline:
    """`with Deadline(when):` raises TimeoutError if the block still runs at loop time
    `when` (give or take a tick). Only inside a task."""

    __slots__ = ("_cancelling", "_expired", "_task", "_ticker", "when")

    def __init__(self, when: float) -> None:
        self.when = when
        self._expired = False

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._ticker = _ticker(task.get_loop())
        self._ticker.watch(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._ticker.blocks.discard(self)
        if (
            self._expired
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc

    def expire(self) -> None:
        self._expired = True
        self._task.cancel()


class _Ticker:
    """The blocks of one loop, checked every tick while there are any."""

    __slots__ = ("_handle", "_loop", "blocks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self.blocks: set[Deadline] = set()

    def watch(self, block: Deadline) -> None:
        self.blocks.add(block)
        if self._handle is None:
            self._handle = self._loop.call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        for block in [block for block in self.blocks if block.when <= now]:
            self.blocks.discard(block)
            block.expire()
        self._handle = self._loop.call_later(TICK_S, self._tick) if self.blocks else None


# The ticker of the loop that last asked: the gateway runs one loop per process; tests run
# one after another, and a closed loop's ticker has nothing left to watch.
_current: tuple[asyncio.AbstractEventLoop, _Ticker] | None = None


def _ticker(loop: asyncio.AbstractEventLoop) -> _Ticker:
    global _current
    current = _current  # read once: a loop in another thread may replace it meanwhile
    if current is None or current[0] is not loop:
        current = _current = (loop, _Ticker(loop))
    return current[1]
