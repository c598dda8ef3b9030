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
from typing import Any

import orjson
import structlog

from proxy.frozen import frozen
from proxy.storage.database import Database

log = structlog.get_logger("proxy.responses")

PURGE_EVERY_S = 3600.0
RETRY_DELAY_S = 1.0
# A longer chain is a loop or an abuse; no conversation needs it.
MAX_CHAIN = 1000
# Past this much unwritten (a stuck disk), new responses are not kept.
MAX_PENDING_BYTES = 256 * 1024 * 1024

_CHAIN = """
WITH RECURSIVE chain(id, owner, created_at, expires_at, previous_id, input, response, depth)
AS (
    SELECT id, owner, created_at, expires_at, previous_id, input, response, 0
    FROM stored_responses WHERE id = ?
    UNION ALL
    SELECT s.id, s.owner, s.created_at, s.expires_at, s.previous_id, s.input, s.response,
           chain.depth + 1
    FROM stored_responses AS s JOIN chain ON s.id = chain.previous_id
    WHERE chain.depth < ?
)
SELECT id, owner, created_at, expires_at, previous_id, input, response FROM chain
ORDER BY depth
"""


@frozen
class StoredResponse:
    id: str
    owner: str
    created_at: float
    expires_at: float
    previous_id: str | None
    input: list[Any]
    response: dict[str, Any]


@frozen
class Pending:
    """A response not yet written: as stored, and its JSON, encoded once."""

    stored: StoredResponse
    input_json: str
    response_json: str

    @property
    def size(self) -> int:
        return len(self.input_json) + len(self.response_json)


class ResponseStore:
    def __init__(self, db: Database, retention_days: float, flush_interval_s: float) -> None:
        self._db = db
        self._retention_s = retention_days * 86400
        self._flush_interval_s = flush_interval_s
        self._pending: dict[str, Pending] = {}
        self._pending_bytes = 0
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
        now = time.time()
        stored = StoredResponse(
            response["id"], owner, now, now + self._retention_s, previous_id, items, response
        )
        pending = Pending(stored, orjson.dumps(items).decode(), orjson.dumps(response).decode())
        if self._pending_bytes + pending.size > MAX_PENDING_BYTES:
            log.warning("response_not_stored", reason="store backlog", id=stored.id)
            return
        self._pending[stored.id] = pending
        self._pending_bytes += pending.size
        self._wake.set()

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        chain = await self._chain(response_id, owner, 1)
        return chain[0] if chain else None

    async def history(self, response_id: str, owner: str) -> list[Any] | None:
        """The conversation up to and including a response: every turn's input and
        output items, oldest first; None when it (or a link of it) does not exist."""
        turns = await self._chain(response_id, owner, MAX_CHAIN)
        if not turns or turns[-1].previous_id is not None:
            return None  # a link expired, was deleted, or the chain is too long
        items: list[Any] = []
        for stored in reversed(turns):
            items += stored.input
            items += stored.response.get("output") or []
        return items

    async def _chain(self, response_id: str, owner: str, most: int) -> list[StoredResponse]:
        """A response and those it continued, newest first, up to `most`; it stops at the
        first that is missing or not the owner's (another's id does not exist for them)."""
        chain: list[StoredResponse] = []
        current: str | None = response_id
        while current is not None and current in self._pending and len(chain) < most:
            chain.append(self._pending[current].stored)
            current = chain[-1].previous_id
        if current is not None and len(chain) < most and current not in self._deleted:
            rows = await self._db.fetchall(_CHAIN, (current, most - len(chain) - 1))
            chain += [
                StoredResponse(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]), orjson.loads(r[6]))
                for r in rows
            ]
        now = time.time()
        for depth, stored in enumerate(chain):
            if stored.owner != owner or stored.expires_at < now or stored.id in self._deleted:
                return chain[:depth]
        return chain

    async def delete(self, response_id: str, owner: str) -> bool:
        if await self.get(response_id, owner) is None:
            return False
        pending = self._pending.pop(response_id, None)
        if pending is not None:
            self._pending_bytes -= pending.size
        self._deleted.add(response_id)  # until the row is gone, for readers meanwhile
        try:
            async with self._db.transaction() as conn:
                await conn.execute("DELETE FROM stored_responses WHERE id = ?", (response_id,))
        finally:
            self._deleted.discard(response_id)
        return True

    async def flush(self) -> None:
        batch = list(self._pending.values())
        if not batch:
            return
        rows = [
            (
                p.stored.id,
                p.stored.owner,
                p.stored.created_at,
                p.stored.expires_at,
                p.stored.previous_id,
                p.input_json,
                p.response_json,
            )
            for p in batch
        ]
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO stored_responses "
                "(id, owner, created_at, expires_at, previous_id, input, response) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "owner = excluded.owner, created_at = excluded.created_at, "
                "expires_at = excluded.expires_at, previous_id = excluded.previous_id, "
                "input = excluded.input, response = excluded.response",
                rows,
            )
        for pending in batch:
            if self._pending.get(pending.stored.id) is pending:
                del self._pending[pending.stored.id]
                self._pending_bytes -= pending.size

    async def purge(self) -> int:
        async with self._db.transaction() as conn:
            return await conn.execute(
                "DELETE FROM stored_responses WHERE expires_at < ?", (time.time(),)
            )

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
