"""The audit log: every management action, stored in the database with who did it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from proxy.storage.database import Transaction

AUDIT_V1 = (
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,          -- a key name, "cli", or "gateway" for its own events
        action TEXT NOT NULL,         -- user.created, key.revoked, budget.alert, config.reloaded...
        user_name TEXT,               -- the user the action concerns, for per-user views
        subject TEXT,
        detail TEXT                   -- JSON
    )
    """,
    "CREATE INDEX audit_log_user ON audit_log (user_name, ts)",
    "CREATE INDEX audit_log_ts ON audit_log (ts)",
)


async def record(
    db: Transaction,
    actor: str,
    action: str,
    *,
    user: str | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry. Call inside the caller's transaction when there is one."""
    await db.execute(
        "INSERT INTO audit_log (ts, actor, action, user_name, subject, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            time.time(),
            actor,
            action,
            user,
            subject,
            None if detail is None else orjson.dumps(detail).decode(),
        ),
    )
