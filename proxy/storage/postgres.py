"""PostgreSQL behind the same `Database` seam as SQLite (asyncpg, one pool per process).

The gateway's SQL is written once, in the subset both engines share, with `?` for
parameters; here each statement's `?` become `$1, $2, ...` (once per distinct statement).
Two differences are absorbed here rather than in every query: SUM over BIGINT is NUMERIC
in PostgreSQL, which asyncpg would return as Decimal, so NUMERIC is decoded to int (or
float when it has a fraction); and a unique violation becomes `DuplicateRow`.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, Unpack

import asyncpg

from proxy.errors import StorageUnavailable
from proxy.storage.database import DuplicateRow, Transaction
from proxy.storage.postgres_schema import MIGRATIONS
from proxy.storage.request_log import Batch, write_batch
from proxy.storage.writer import BatchedLogWriter, WriterOptions

# One lock id for "this database is being migrated": instances starting together take
# turns instead of both creating the tables.
_MIGRATION_LOCK = 0x6C6C6D67


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders as `$n`, outside quoted literals."""
    parts = sql.split("'")
    count = 0
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        pieces = parts[i].split("?")
        out = [pieces[0]]
        for piece in pieces[1:]:
            count += 1
            out.append(f"${count}{piece}")
        parts[i] = "".join(out)
    return "'".join(parts)


def _number(text: str) -> int | float:
    return float(text) if "." in text or "e" in text.lower() or "n" in text.lower() else int(text)


async def _setup(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "numeric", encoder=str, decoder=_number, schema="pg_catalog", format="text"
    )


class PostgresTransaction:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with _translated():
            status = await self._conn.execute(numbered(sql), *args)
        # The command tag ends with the row count: "UPDATE 3", "INSERT 0 1", "DELETE 0".
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with _translated():
            await self._conn.executemany(numbered(sql), list(rows))

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with _translated():
            return list(await self._conn.fetch(numbered(sql), *args))

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with _translated():
            return await self._conn.fetchrow(numbered(sql), *args)


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(
        cls, url: str, *, password: str | None = None, pool_size: int = 10, timeout_s: float = 10
    ) -> PostgresDatabase:
        return cls(await open_pool(url, password, pool_size, timeout_s))

    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        with _translated():
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(numbered(sql), *args))

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> Any:
        with _translated():
            async with self._pool.acquire() as conn:
                return await conn.fetchrow(numbered(sql), *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        # Spelled out rather than `async with`: only the database's own steps are
        # translated, never an error raised by the caller's body.
        with _translated():
            conn = await self._pool.acquire()
        try:
            transaction = conn.transaction()
            with _translated():
                await transaction.start()
            try:
                yield PostgresTransaction(conn)
            except BaseException:
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            with _translated():
                await transaction.commit()
        finally:
            # A connection that cannot be reset is closed by the pool; the outcome above
            # (committed, or the caller's error) is what the caller must hear.
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    async def close(self) -> None:
        await self._pool.close()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """asyncpg's errors as the seam's: a taken name, or a database that cannot answer."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateRow(str(exc)) from exc
    except (asyncpg.InterfaceError, *_TRANSIENT) as exc:
        if _unreachable(exc):
            raise StorageUnavailable("the database is unreachable; try again") from exc
        raise


def _unreachable(error: Exception) -> bool:
    if isinstance(error, asyncpg.InterfaceError):
        return not isinstance(error, ValueError)  # a value asyncpg cannot encode is not
    return isinstance(error, _TRANSIENT)


async def open_pool(url: str, password: str | None, size: int, timeout_s: float) -> asyncpg.Pool:
    """A pool on a migrated database; closed again if the migration fails."""
    pool = await asyncpg.create_pool(
        url,
        password=password,
        # No floor: a pool that must keep a connection open retries (and logs a
        # traceback) in a loop while the server is down; one opened on demand does not.
        min_size=0,
        max_size=size,
        timeout=timeout_s,
        command_timeout=60,
        init=_setup,
    )
    try:
        await migrate_postgres(pool)
    except BaseException:
        await pool.close()
        raise
    return pool


async def migrate_postgres(pool: asyncpg.Pool) -> list[str]:
    """Apply what is missing, each migration in its own transaction; return their names."""
    applied = []
    async with pool.acquire() as conn:
        for name, statements in MIGRATIONS:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS _migrations "
                    "(name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)"
                )
                if await conn.fetchval("SELECT 1 FROM _migrations WHERE name = $1", name):
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO _migrations VALUES ($1, $2)", name, time.time())
                applied.append(name)
    return applied


class PostgresLogWriter(BatchedLogWriter):
    """The request log in PostgreSQL: see `proxy.storage.writer`. Every worker and
    instance writes its own rows; a lost connection is replaced by the pool on the next
    batch, and the rows wait in the queue meanwhile."""

    def __init__(
        self, url: str, *, password: str | None = None, **options: Unpack[WriterOptions]
    ) -> None:
        super().__init__(**options)
        self._url = url
        self._password = password
        self._pool: asyncpg.Pool | None = None

    async def _connect(self) -> None:
        self._pool = await open_pool(self._url, self._password, 2, 10.0)

    async def _disconnect(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _write(self, batch: Batch, uncertain: bool) -> None:
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            await write_batch(PostgresTransaction(conn), batch, uncertain)

    async def _delete_before(self, table: str, column: str, bound: float, limit: int) -> int:
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"DELETE FROM {table} WHERE ctid IN "
                f"(SELECT ctid FROM {table} WHERE {column} < $1 LIMIT {int(limit)})",
                bound,
            )
        return int(status.rsplit(" ", 1)[-1])

    def _is_transient(self, error: Exception) -> bool:
        return isinstance(error, StorageUnavailable) or _unreachable(error)

    def _is_refusal(self, error: Exception) -> bool:
        return isinstance(error, (asyncpg.PostgresError, ValueError, TypeError, OverflowError))


# The server went away, is starting or stopping, or ran out of room or connections.
_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.InternalClientError,  # a connection left mid-operation when it broke
    asyncpg.exceptions.TransactionRollbackError,  # deadlock, serialization: try again
)
