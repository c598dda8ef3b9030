"""Budget threshold alerts already fired: so a restart does not fire them again."""

from __future__ import annotations

import time

from proxy.accounts import audit
from proxy.storage.database import Database

Fact = tuple[str, str, str, float]  # (period, account kind, account name, threshold)


async def fired_alerts(db: Database) -> set[Fact]:
    rows = await db.fetchall("SELECT period, kind, name, threshold FROM budget_alerts")
    return {(r[0], r[1], r[2], float(r[3])) for r in rows}


async def remember_alert(db: Database, fact: Fact, owner: str | None) -> None:
    """Keep the fact, and note it in the audit log, in one transaction."""
    period, kind, name, threshold = fact
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO budget_alerts (period, kind, name, threshold, fired_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (*fact, time.time()),
        )
        await audit.record(
            conn,
            "gateway",
            "budget.threshold_crossed",
            user=name if kind == "user" else owner,
            subject=name if kind == "key" else f"user:{name}",
            detail={"period": period, "threshold": threshold},
        )
