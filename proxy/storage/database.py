"""The management side's database connection: reads as they come, writes one at a time.

aiosqlite runs a connection's statements on one thread, but two coroutines that each open
a transaction on the same connection collide ("cannot start a transaction within a
transaction"), and a stray statement lands inside somebody else's transaction. Every write
therefore goes through `transaction()`, which holds the connection's write lock from
BEGIN IMMEDIATE to COMMIT (or ROLLBACK).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiosqlite

from proxy.storage.migrations import open_database


class Database:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, busy_timeout_ms: int = 5000) -> Database:
        return cls(await open_database(path, busy_timeout_ms))

    def execute(self, sql: str, args: Iterable[Any] = ()) -> aiosqlite.context.Result[Any]:
        """A read (`async with db.execute(...) as cursor`); writes use `transaction()`."""
        return self.conn.execute(sql, tuple(args))

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        async with self.conn.execute(sql, tuple(args)) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> Any:
        async with self.conn.execute(sql, tuple(args)) as cursor:
            return await cursor.fetchone()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def close(self) -> None:
        await self.conn.close()
