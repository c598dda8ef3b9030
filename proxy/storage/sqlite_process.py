"""The request log's SQLite file, written by a process of its own.

The gateway's `SQLiteLogWriter` keeps the queue, the batches and the retries, and brings
the schema up to date before it starts this process; this process only runs what it is
sent: write a batch, delete old rows. Why a process and not a thread: the sqlite3 driver
releases the GIL around every statement, so a writer thread traded the GIL with the
event loop around every row, and that cost the loop about as much CPU again as the
inserts themselves (docs/performance.md). It uses the sqlite3 module alone, no event
loop and no thread: the process stays small (about 15 MB resident, against 23 with
asyncio and aiosqlite).

Requests come on stdin and answers go to stdout, each an 8-byte length and a pickle.
Both ends are this package, started by the gateway with its own interpreter, so nothing
foreign is ever unpickled. SIGINT and SIGTERM are ignored: a terminal or systemd sends
them to the gateway's whole process group, and the gateway, which owns the queue, decides
when the log is flushed. It ends this process by closing its stdin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import os
import pickle
import signal
import sqlite3
import struct
import sys
from collections.abc import Coroutine, Iterable, Sequence
from typing import IO, Any, TypeVar

from proxy.storage.request_log import Batch, write_batch
from proxy.storage.rows import DebugRow, RequestRow

T = TypeVar("T")

LENGTH = struct.Struct(">Q")
# A row crosses the pipe as a tuple of its fields: a dataclass pickles (and unpickles)
# through Python-level state methods, over three times slower.
_ROW_FIELDS = operator.attrgetter(*(field.name for field in dataclasses.fields(RequestRow)))
PackedBatch = list[tuple[tuple[Any, ...], DebugRow | None]]


def pack(batch: Batch) -> PackedBatch:
    return [(_ROW_FIELDS(row), debug) for row, debug in batch]


def unpack(packed: PackedBatch) -> Batch:
    return [(RequestRow(*values), debug) for values, debug in packed]


def frame(message: object) -> tuple[bytes, bytes]:
    """A message as its length and its pickle (written together, never concatenated: a
    batch of debug bodies can be large)."""
    body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(body)), body


def answer(outcome: BaseException | None = None, value: object = None) -> tuple[bytes, bytes]:
    """An answer: ("ok", value), or ("error", the exception) to be raised by the caller."""
    if outcome is None:
        return frame(("ok", value))
    try:
        framed = frame(("error", outcome))
        pickle.loads(framed[1])  # an exception that pickles but cannot be rebuilt ...
        return framed
    except Exception:  # ... or cannot be pickled at all is still told, as text
        return frame(("error", RuntimeError(repr(outcome))))


class Statements:
    """The storage seam's `Transaction`, over a plain sqlite3 connection: nothing here
    waits, so a coroutine written against the seam runs to its end in one step."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(args)).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, tuple(args)).fetchall()

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, tuple(args)).fetchone()


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (see `Statements`)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a request-log statement tried to wait")


def pragmas(busy_timeout_ms: int) -> tuple[str, ...]:
    """What every connection to the gateway's SQLite file sets first, this process's and
    the gateway's own (`proxy.storage.migrations.open_database`). The busy timeout comes
    first: it bounds every wait after it on a locked file."""
    return (
        f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    )


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection as the gateway's own, to a file whose schema the gateway has already
    brought up to date."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in pragmas(busy_timeout_ms):
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


class LogFile:
    """The operations the gateway asks for, on one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def write(self, packed: PackedBatch, uncertain: bool) -> None:
        """The batch and its roll-ups in one transaction, or nothing."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            run_now(write_batch(Statements(self._conn), unpack(packed), uncertain))
            self._conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                self._conn.execute("ROLLBACK")
            raise

    def delete_before(self, table: str, column: str, bound: float, limit: int) -> int:
        cursor = self._conn.execute(
            f"DELETE FROM {table} WHERE rowid IN "
            f"(SELECT rowid FROM {table} WHERE {column} < ? LIMIT {int(limit)})",
            (bound,),
        )
        return cursor.rowcount

    def run(self, request: tuple[Any, ...]) -> tuple[bytes, bytes]:
        operation, *args = request
        try:
            if operation == "write":
                self.write(*args)
                return answer()
            if operation == "delete_before":
                return answer(value=self.delete_before(*args))
            raise ValueError(f"unknown operation {operation!r}")
        except Exception as exc:
            return answer(exc)


def _null(value: None) -> None:
    return value


def receive(stream: IO[bytes]) -> Any:
    """The next request, or None once the gateway has closed the pipe."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    return pickle.loads(stream.read(LENGTH.unpack(head)[0]))


def main(path: str, busy_timeout_ms: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The sqlite3 module binds int, float and str directly, but asks every other value,
    # None too, whether it adapts itself, through two failing attribute lookups. A row
    # has about ten NULLs; registered as its own adapter, None is found in one dict
    # lookup (measured: 8.3 against 11.8 us a row for the insert alone).
    sqlite3.register_adapter(type(None), _null)
    requests = sys.stdin.buffer
    # Answers go to the pipe on fd 1; anything else that writes to stdout (a warning, a
    # stray print) goes to stderr instead, and never into the answers' framing.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        conn = connect(path, busy_timeout_ms)
    except Exception as exc:
        replies.writelines(answer(exc))
        replies.flush()
        return
    replies.writelines(answer())  # ready
    replies.flush()
    log_file = LogFile(conn)
    try:
        while (request := receive(requests)) is not None:
            replies.writelines(log_file.run(request))
            replies.flush()
    finally:
        conn.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
