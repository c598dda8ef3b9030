"""Stored Responses (`store`, `previous_response_id`, GET and DELETE /v1/responses/{id}).

A response is kept with the input of its turn and a link to the response it continued,
so a conversation is the chain of links, on any provider. Each belongs to its owner (the
calling user, or the static key): another owner's id does not exist for them.

Saving is write-behind, like the request log: the answer goes out at once, a background
task writes pending responses every `flush_interval_s`, and until then they are served
from memory, so the next turn finds its predecessor however fast it comes. Expired
responses (`[responses] retention_days`) are deleted hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from proxy.storage.database import Database

log = structlog.get_logger("proxy.responses")

PURGE_EVERY_S = 3600.0
RETRY_DELAY_S = 1.0
# A longer chain is a loop or an abuse; no conversation needs it.
MAX_CHAIN = 1000
# Past this many unwritten responses (a stuck disk), new ones are not kept.
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str
    created_at: float
    expires_at: float
    previous_id: str | None
    input: list[Any]
    response: dict[str, Any]


class ResponseStore:
    def __init__(self, db: Database, retention_days: float, flush_interval_s: float) -> None:
        self._db = db
        self._retention_s = retention_days * 86400
        self._flush_interval_s = flush_interval_s
        self._pending: dict[str, StoredResponse] = {}
        self._deleted: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="response-store")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def save(
        self, owner: str, previous_id: str | None, items: list[Any], response: dict[str, Any]
    ) -> None:
        """Keep a response (never blocks: written by the background task)."""
        if len(self._pending) >= MAX_PENDING:
            log.warning("response_not_stored", reason="store backlog", id=response["id"])
            return
        now = time.time()
        stored = StoredResponse(
            response["id"], owner, now, now + self._retention_s, previous_id, items, response
        )
        self._pending[stored.id] = stored
        self._wake.set()

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        stored = self._pending.get(response_id)
        if stored is None and response_id not in self._deleted:
            row = await self._db.fetchone(
                "SELECT id, owner, created_at, expires_at, previous_id, input, response "
                "FROM stored_responses WHERE id = ?",
                (response_id,),
            )
            if row is not None:
                stored = StoredResponse(
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    orjson.loads(row[5]),
                    orjson.loads(row[6]),
                )
        if stored is None or stored.owner != owner or stored.expires_at < time.time():
            return None
        return stored

    async def history(self, response_id: str, owner: str) -> list[Any] | None:
        """The conversation up to and including a response: every turn's input and
        output items, oldest first; None when it (or a link of it) does not exist."""
        turns: list[StoredResponse] = []
        current: str | None = response_id
        while current is not None:
            if len(turns) >= MAX_CHAIN:
                return None
            stored = await self.get(current, owner)
            if stored is None:
                return None
            turns.append(stored)
            current = stored.previous_id
        items: list[Any] = []
        for stored in reversed(turns):
            items += stored.input
            items += stored.response.get("output") or []
        return items

    async def delete(self, response_id: str, owner: str) -> bool:
        if await self.get(response_id, owner) is None:
            return False
        self._pending.pop(response_id, None)
        self._deleted.add(response_id)
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM stored_responses WHERE id = ?", (response_id,))
        self._deleted.discard(response_id)
        return True

    async def flush(self) -> None:
        batch = list(self._pending.values())
        if not batch:
            return
        rows = [
            (
                s.id,
                s.owner,
                s.created_at,
                s.expires_at,
                s.previous_id,
                orjson.dumps(s.input).decode(),
                orjson.dumps(s.response).decode(),
            )
            for s in batch
        ]
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT OR REPLACE INTO stored_responses "
                "(id, owner, created_at, expires_at, previous_id, input, response) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        for stored in batch:
            if self._pending.get(stored.id) is stored:
                del self._pending[stored.id]

    async def purge(self) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM stored_responses WHERE expires_at < ?", (time.time(),)
            )
            return cursor.rowcount

    async def _run(self) -> None:
        next_purge = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), PURGE_EVERY_S)
            self._wake.clear()
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self.flush()
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + PURGE_EVERY_S
                    await self.purge()
            except Exception:  # the database is busy or gone: keep them, try again
                log.exception("response_store_flush_failed", pending=len(self._pending))
                self._wake.set()
                await asyncio.sleep(RETRY_DELAY_S)
