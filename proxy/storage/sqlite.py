"""The request log in a SQLite file (the embedded default): see `proxy.storage.writer`.

The batches are written by a process of the writer's own (`proxy.storage.sqlite_process`),
so that SQLite's work neither holds the event loop's GIL nor waits for it. Its connection
has a short busy timeout: a batch that finds the file locked (another process writing)
is better retried by the writer than waited on. If that process dies, the batch in
flight fails like one that met a lost connection (kept, and retried as uncertain), and
the next attempt starts a new process.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sqlite3
import sys
from pathlib import Path
from typing import Any, Unpack

import structlog

from proxy.errors import StorageUnavailable
from proxy.storage.migrations import open_database
from proxy.storage.request_log import Batch
from proxy.storage.sqlite_process import LENGTH, frame, pack
from proxy.storage.writer import BatchedLogWriter, WriterOptions

log = structlog.get_logger("proxy.logwriter")

BUSY_TIMEOUT_MS = 1000
EXIT_TIMEOUT_S = 3.0  # it exits once its current batch is done (busy timeout: 1 s)
# What the pipe to the writing process raises once that process is gone, or its answer
# cannot be read.
PIPE_BROKEN = (ConnectionError, asyncio.IncompleteReadError, pickle.UnpicklingError)


class LogProcessGone(StorageUnavailable):
    """The writing process ended (killed, or crashed) before it answered."""


class SQLiteLogWriter(BatchedLogWriter):
    def __init__(self, path: str, **options: Unpack[WriterOptions]) -> None:
        super().__init__(**options)
        self.path = path
        self._process: asyncio.subprocess.Process | None = None
        self._calls = asyncio.Lock()  # one request in flight, so answers match requests

    @property
    def process_id(self) -> int | None:
        """The writing process's id, while it runs."""
        return None if self._process is None else self._process.pid

    async def _connect(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # The schema is brought up to date here, so the writing process needs no driver
        # but sqlite3 (and a file that cannot be opened fails the start with its reason).
        await (await open_database(self.path, BUSY_TIMEOUT_MS)).close()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy.storage.sqlite_process",
            self.path,
            str(BUSY_TIMEOUT_MS),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            status, error = await self._answer()
        except PIPE_BROKEN as exc:
            await self._disconnect()
            raise LogProcessGone(
                "the request log's writing process ended before it was ready (its error is "
                "logged above)"
            ) from exc
        except BaseException:
            await self._disconnect()
            raise
        if status == "error":  # what opening the file (and migrating it) raised
            await self._disconnect()
            raise error

    async def _disconnect(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the process finishes what it was doing, then exits
        try:
            await asyncio.wait_for(process.wait(), EXIT_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _write(self, batch: Batch, uncertain: bool) -> None:
        await self._call("write", pack(batch), uncertain)

    async def _delete_before(self, table: str, column: str, bound: float, limit: int) -> int:
        deleted: int = await self._call("delete_before", table, column, bound, limit)
        return deleted

    async def _call(self, *request: object) -> Any:
        async with self._calls:
            if self._process is None or self._process.returncode is not None:
                await self._restart()
            process = self._process
            assert process is not None and process.stdin is not None
            try:
                process.stdin.writelines(frame(request))
                await process.stdin.drain()
                status, value = await self._answer()
            except PIPE_BROKEN as exc:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()  # whatever state it is in, the next call starts afresh
                raise LogProcessGone("the request log's writing process ended") from exc
            if status == "error":
                raise value
            return value

    async def _restart(self) -> None:
        if self._process is not None:
            log.warning("log_process_restarted", exit_code=self._process.returncode)
            await self._disconnect()
        await self._connect()

    async def _answer(self) -> tuple[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        head = await process.stdout.readexactly(LENGTH.size)
        answer: tuple[str, Any] = pickle.loads(
            await process.stdout.readexactly(LENGTH.unpack(head)[0])
        )
        return answer

    def _is_transient(self, error: Exception) -> bool:
        # Locked, busy, disk full, the process gone (StorageUnavailable: locked, as the
        # seam reports it).
        return isinstance(error, (sqlite3.OperationalError, StorageUnavailable))

    def _is_refusal(self, error: Exception) -> bool:
        return isinstance(error, (sqlite3.Error, OverflowError, ValueError, TypeError))
