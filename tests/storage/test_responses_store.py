"""Stored Responses on a real SQLite file: chains across memory and disk, owners, expiry,
deletion, and a bounded backlog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.storage import responses as store_module
from proxy.storage.database import Database, SQLiteDatabase
from proxy.storage.responses import ResponseStore


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await SQLiteDatabase.open(str(tmp_path / "gateway.db"))
    yield database
    await database.close()


def turn(
    store: ResponseStore, n: int, owner: str = "user:ada", previous: int | None = None
) -> None:
    response: dict[str, Any] = {
        "id": f"resp_{n}",
        "output": [{"type": "message", "text": f"out{n}"}],
    }
    previous_id = None if previous is None else f"resp_{previous}"
    store.save(owner, previous_id, [{"type": "message", "text": f"in{n}"}], response)


def texts(items: list[Any] | None) -> list[str]:
    return [item["text"] for item in items or []]


async def test_a_chain_reads_the_same_from_memory_and_from_disk(db: Database) -> None:
    store = ResponseStore(db, retention_days=1, flush_interval_s=0.01)
    turn(store, 1)
    turn(store, 2, previous=1)
    await store.flush()  # the first two on disk, the third still in memory
    turn(store, 3, previous=2)
    chain = await store.history("resp_3", "user:ada")
    assert texts(chain) == ["in1", "out1", "in2", "out2", "in3", "out3"]
    await store.flush()
    assert texts(await store.history("resp_3", "user:ada")) == texts(chain)
    got = await store.get("resp_2", "user:ada")
    assert got is not None and got.previous_id == "resp_1"


async def test_another_owner_sees_nothing(db: Database) -> None:
    store = ResponseStore(db, retention_days=1, flush_interval_s=0.01)
    turn(store, 1, owner="user:ada")
    turn(store, 2, owner="user:eve", previous=1)  # eve names ada's response as her past
    for written in (False, True):
        if written:
            await store.flush()
        assert await store.get("resp_1", "user:eve") is None
        assert await store.history("resp_1", "user:eve") is None
        assert await store.history("resp_2", "user:eve") is None  # a link is not hers
        assert not await store.delete("resp_1", "user:eve")
    assert await store.get("resp_1", "user:ada") is not None


async def test_expired_and_deleted_links_break_the_chain(db: Database) -> None:
    store = ResponseStore(db, retention_days=1, flush_interval_s=0.01)
    turn(store, 1)
    turn(store, 2, previous=1)
    turn(store, 3)
    await store.flush()
    assert await store.delete("resp_1", "user:ada")
    assert await store.get("resp_1", "user:ada") is None
    assert await store.history("resp_2", "user:ada") is None  # its past is gone
    await db.conn.execute(
        "UPDATE stored_responses SET expires_at = ? WHERE id = 'resp_3'", (time.time() - 1,)
    )
    await db.conn.commit()
    assert await store.get("resp_3", "user:ada") is None
    assert await store.purge() == 1


async def test_a_chain_longer_than_the_limit_is_not_found(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_CHAIN", 5)
    store = ResponseStore(db, retention_days=1, flush_interval_s=0.01)
    turn(store, 0)
    for n in range(1, 8):
        turn(store, n, previous=n - 1)
    await store.flush()
    assert texts(await store.history("resp_4", "user:ada"))[-1] == "out4"
    assert await store.history("resp_7", "user:ada") is None


async def test_the_backlog_is_bounded_in_bytes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_PENDING_BYTES", 2_000)
    store = ResponseStore(db, retention_days=1, flush_interval_s=0.01)
    big = {"id": "resp_big", "output": [{"text": "x" * 1_500}]}
    store.save("user:ada", None, [], big)
    store.save("user:ada", None, [], {**big, "id": "resp_too_many"})
    assert await store.get("resp_big", "user:ada") is not None
    assert await store.get("resp_too_many", "user:ada") is None
    await store.flush()
    store.save("user:ada", None, [], {**big, "id": "resp_after_flush"})
    assert await store.get("resp_after_flush", "user:ada") is not None


async def test_the_background_writer_writes(db: Database) -> None:
    store = ResponseStore(db, retention_days=1, flush_interval_s=0.01)
    await store.start()
    try:
        turn(store, 1)
        for _ in range(100):
            if await db.fetchone("SELECT id FROM stored_responses") is not None:
                break
            await asyncio.sleep(0.01)
        assert await db.fetchone("SELECT id FROM stored_responses") == ("resp_1",)
    finally:
        await store.close()
