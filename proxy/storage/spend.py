"""This month's spend per user and per key, from the request log's hourly roll-ups: what
budgets start from (at start-up, or when the shared state lost a month's balances)."""

from __future__ import annotations

from proxy.budgets import month_start
from proxy.storage.database import Database

_COLUMNS = {"user": "owner", "key": "key_ref"}


async def month_spend(db: Database, now: float) -> dict[tuple[str, str], int]:
    """Every account's spend since the start of the month of `now`."""
    since = int(month_start(now) // 3600 * 3600)
    spent: dict[tuple[str, str], int] = {}
    for kind, column in _COLUMNS.items():
        rows = await db.fetchall(
            f"SELECT {column}, SUM(cost_nano) FROM usage_hourly "
            f"WHERE hour >= ? AND {column} != '' GROUP BY {column}",
            (since,),
        )
        for name, total in rows:
            spent[(kind, name)] = int(total or 0)
    return spent


async def account_spend(db: Database, kind: str, name: str, since: float) -> int:
    """One account's spend since `since` (a month's start)."""
    column = _COLUMNS[kind]
    row = await db.fetchone(
        f"SELECT SUM(cost_nano) FROM usage_hourly WHERE hour >= ? AND {column} = ?",
        (int(since // 3600 * 3600), name),
    )
    return int(row[0] or 0) if row is not None else 0
