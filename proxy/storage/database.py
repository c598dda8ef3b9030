"""The management side's database: the seam both engines implement, and SQLite's side of it.

Statements are written once, in the SQL that SQLite and PostgreSQL share, with `?` for
parameters. Reads go straight to the database; every write runs in `transaction()`.

SQLite: aiosqlite runs a connection's statements on one thread, but two coroutines that
each open a transaction on the same connection collide ("cannot start a transaction
within a transaction"), and a stray statement lands inside somebody else's transaction.
So `transaction()` holds the connection's write lock from BEGIN IMMEDIATE to COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import aiosqlite

from proxy.errors import StorageUnavailable
from proxy.storage.migrations import open_database


class DuplicateRow(Exception):
    """A write broke a unique constraint (a name already taken, say)."""


class Transaction(Protocol):
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any: ...


class Database(Protocol):
    dialect: str  # "sqlite" | "postgresql"

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]: ...

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> Any: ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def close(self) -> None: ...


class SQLiteTransaction:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with _translated():
            cursor = await self._conn.execute(sql, tuple(args))
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with _translated():
            await self._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        async with self._conn.execute(sql, tuple(args)) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any:
        async with self._conn.execute(sql, tuple(args)) as cursor:
            return await cursor.fetchone()


class SQLiteDatabase:
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str, busy_timeout_ms: int = 5000) -> SQLiteDatabase:
        return cls(await open_database(path, busy_timeout_ms))

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        with _translated():
            async with self.conn.execute(sql, tuple(args)) as cursor:
                return list(await cursor.fetchall())

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> Any:
        with _translated():
            async with self.conn.execute(sql, tuple(args)) as cursor:
                return await cursor.fetchone()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._write_lock:
            with _translated():
                await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield SQLiteTransaction(self.conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def close(self) -> None:
        await self.conn.close()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """sqlite3's errors as the seam's: a taken name, or a file locked past the timeout."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" not in str(exc):
            raise
        raise DuplicateRow(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise StorageUnavailable("the database is busy; try again") from exc
