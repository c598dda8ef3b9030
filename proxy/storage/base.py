"""The request log's seam."""

from __future__ import annotations

from typing import Protocol

from proxy.storage.rows import DebugRow, RequestRow


class LogSink(Protocol):
    @property
    def queue_depth(self) -> int: ...

    @property
    def rows_written(self) -> int: ...

    @property
    def rows_dropped(self) -> int: ...

    @property
    def batches_failed(self) -> int: ...

    @property
    def rows_dead_lettered(self) -> int:
        """Rows the database refused; each was logged in full instead."""
        ...

    def enqueue(self, row: RequestRow, debug: DebugRow | None = None) -> bool:
        """Queue a row without waiting; False if it had to be dropped (queue full)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Write every queued row, then stop."""
        ...
