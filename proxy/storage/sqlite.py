"""The request log in a SQLite file (the embedded default): see `proxy.storage.writer`.

The writer has a connection of its own, with a short busy timeout: a batch that finds the
file locked (another process writing) is better retried by the writer than waited on.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Unpack

import aiosqlite

from proxy.errors import StorageUnavailable
from proxy.storage.database import SQLiteTransaction
from proxy.storage.migrations import open_database
from proxy.storage.request_log import Batch, write_batch
from proxy.storage.writer import BatchedLogWriter, WriterOptions


class SQLiteLogWriter(BatchedLogWriter):
    def __init__(self, path: str, **options: Unpack[WriterOptions]) -> None:
        super().__init__(**options)
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def _connect(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await open_database(self.path, busy_timeout_ms=1000)

    async def _disconnect(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _write(self, batch: Batch, uncertain: bool) -> None:
        db = self._db
        assert db is not None
        await db.execute("BEGIN IMMEDIATE")
        try:
            await write_batch(SQLiteTransaction(db), batch, uncertain)
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise

    async def _delete_before(self, table: str, column: str, bound: float, limit: int) -> int:
        assert self._db is not None
        cursor = await self._db.execute(
            f"DELETE FROM {table} WHERE rowid IN "
            f"(SELECT rowid FROM {table} WHERE {column} < ? LIMIT {int(limit)})",
            (bound,),
        )
        return cursor.rowcount

    def _is_transient(self, error: Exception) -> bool:
        # Locked, busy, disk full (StorageUnavailable: locked, as the seam reports it).
        return isinstance(error, (sqlite3.OperationalError, StorageUnavailable))

    def _is_refusal(self, error: Exception) -> bool:
        return isinstance(error, (sqlite3.Error, OverflowError, ValueError, TypeError))
