"""The reads behind the management API: the hourly roll-ups (summaries, charts, budgets,
provider health), the request log paged by cursor, and the audit log.

Every query the API runs is here, so a storage backend is one module to write; the API
modules shape what these return. `owner` narrows a read to one user; None reads all.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from proxy.storage.database import Database
from proxy.storage.request_log import REQUEST_COLUMNS
from proxy.storage.rollup import LATENCY_BUCKETS_MS

# A request-log row as the API reads it: the page cursor's tie breaker, then the row.
_ROW_NAMES = ("rowid", *REQUEST_COLUMNS)
_ROW = ", ".join(_ROW_NAMES)

BUCKETS = ", ".join(f"SUM({name})" for name, _ in LATENCY_BUCKETS_MS)
# What a roll-up row sums, in order (after the group): see `totals()`.
TOTALS = (
    "SUM(requests), SUM(errors), SUM(cache_hits), SUM(prompt_tokens), "
    f"SUM(completion_tokens), SUM(cost_nano), SUM(latency_ms_sum), {BUCKETS}"
)


def _bucket_counts() -> str:
    """The roll-ups' latency histogram (one count per bucket), computed from raw rows."""
    parts, lower = [], 0.0
    for _, upper in LATENCY_BUCKETS_MS:
        low = f"latency_ms > {lower}" if lower else "latency_ms >= 0"
        high = "" if upper == float("inf") else f" AND latency_ms <= {upper}"
        parts.append(f"SUM(CASE WHEN {low}{high} THEN 1 ELSE 0 END)")
        lower = upper
    return ", ".join(parts)


_LATENCY_BUCKETS = _bucket_counts()
# Columns the request log may be filtered on (exact match).
FILTERS = (
    "alias",
    "provider",
    "key_name",
    "owner",
    "tenant",
    "end_user",
    "agent",
    "outcome",
    "client_request_id",
)
CHART_SUMS = {
    "cost": "SUM(cost_nano)",
    "tokens": "SUM(prompt_tokens), SUM(completion_tokens)",
    "latency": BUCKETS,
}


def _owner(owner: str | None) -> tuple[str, list[Any]]:
    return ("", []) if owner is None else (" AND owner = ?", [owner])


def _hours(since: float, until: float) -> list[int]:
    """[since, until) as bounds on the roll-ups' `hour`: whole hours, as the column is."""
    return [int(since // 3600 * 3600), math.ceil(until)]


class UsageReader:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def totals(
        self, since: float, until: float, owner: str | None, group: str | None
    ) -> list[Any]:
        """(group, TOTALS...) rows over [since, until): overall, per provider or per alias."""
        where, args = _owner(owner)
        column = "'all'" if group is None else {"provider": "provider", "alias": "alias"}[group]
        return await self._db.fetchall(
            f"SELECT {column}, {TOTALS} FROM usage_hourly WHERE hour >= ? AND hour < ?{where}"
            + ("" if group is None else f" GROUP BY {column}"),
            [*_hours(since, until), *args],
        )

    async def breakdown(
        self, by: str, since: float, until: float, owner: str | None, limit: int = 100
    ) -> list[Any]:
        """(name, requests, errors, prompt_tokens, completion_tokens, cost_nano) per model,
        provider, key, tenant or agent, costliest first. Tenants and agents are not in the
        roll-ups, so those two read the request log itself."""
        where, args = _owner(owner)
        if by in ("tenant", "agent"):
            return await self._db.fetchall(
                f"SELECT {by}, COUNT(*), SUM(CASE WHEN outcome != 'ok' THEN 1 ELSE 0 END), "
                "SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nano) FROM requests "
                f"WHERE ts >= ? AND ts < ?{where} GROUP BY {by} "
                "ORDER BY COALESCE(SUM(cost_nano), 0) DESC, COUNT(*) DESC LIMIT ?",
                [since, until, *args, limit],
            )
        column = {"model": "alias", "provider": "provider", "key": "key_name"}[by]
        return await self._db.fetchall(
            f"SELECT {column}, SUM(requests), SUM(errors), SUM(prompt_tokens), "
            f"SUM(completion_tokens), SUM(cost_nano) FROM usage_hourly "
            f"WHERE hour >= ? AND hour < ?{where} GROUP BY {column} "
            "ORDER BY COALESCE(SUM(cost_nano), 0) DESC, SUM(requests) DESC LIMIT ?",
            [*_hours(since, until), *args, limit],
        )

    async def chart(
        self, kind: str, step: int, since: float, until: float, owner: str | None
    ) -> list[Any]:
        """(t, sums...) per bucket of `step` seconds; for requests_by_model, (alias, t, n)."""
        where, args = _owner(owner)
        span = f"FROM usage_hourly WHERE hour >= ? AND hour < ?{where}"
        bounds = [*_hours(since, until), *args]
        bucket = f"(hour / {int(step)}) * {int(step)}"
        if kind == "requests_by_model":
            return await self._db.fetchall(
                f"SELECT alias, {bucket} AS t, SUM(requests) {span} "
                "GROUP BY alias, t ORDER BY alias, t",
                bounds,
            )
        sums = CHART_SUMS[kind]
        return await self._db.fetchall(
            f"SELECT {bucket} AS t, {sums} {span} GROUP BY t ORDER BY t", bounds
        )

    async def requests(
        self,
        since: float,
        until: float,
        filters: Mapping[str, Any],
        status: int | None,
        owner: str | None,
        after: tuple[float, int] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Request-log rows, newest first, each with its `rowid` (the page cursor's tie
        breaker), up to `limit`."""
        clauses, args = ["ts >= ?", "ts < ?"], [since, until]
        for name, value in filters.items():
            if name in FILTERS and value is not None:
                clauses.append(f"{name} = ?")
                args.append(value)
        if status is not None:
            clauses.append("http_status = ?")
            args.append(status)
        if after is not None:
            ts, rowid = after
            clauses.append("(ts < ? OR (ts = ? AND rowid < ?))")
            args += [ts, ts, rowid]
        where, owner_args = _owner(owner)
        rows = await self._db.fetchall(
            f"SELECT {_ROW} FROM requests WHERE {' AND '.join(clauses)}{where} "
            "ORDER BY ts DESC, rowid DESC LIMIT ?",
            [*args, *owner_args, limit],
        )
        return [dict(zip(_ROW_NAMES, row, strict=True)) for row in rows]

    async def request(self, request_id: str, owner: str | None) -> dict[str, Any] | None:
        where, args = _owner(owner)
        row = await self._db.fetchone(
            f"SELECT {_ROW} FROM requests WHERE request_id = ?{where}", [request_id, *args]
        )
        return None if row is None else dict(zip(_ROW_NAMES, row, strict=True))

    async def debug_bodies(self, request_id: str) -> tuple[Any, ...] | None:
        """(request_headers, request_body, response_headers, response_body, truncated)."""
        row = await self._db.fetchone(
            "SELECT request_headers, request_body, response_headers, response_body, truncated "
            "FROM debug_bodies WHERE request_id = ?",
            [request_id],
        )
        return None if row is None else tuple(row)

    async def audit(self, user: str | None) -> list[Any]:
        """(id, ts, actor, action, user, subject, detail) rows, newest first."""
        where, args = ("WHERE user_name = ?", [user]) if user else ("", [])
        return await self._db.fetchall(
            f"SELECT id, ts, actor, action, user_name, subject, detail FROM audit_log {where} "
            "ORDER BY id DESC",
            args,
        )

    async def spend_history(self, owner: str, granularity: str) -> list[Any]:
        """(period, cost_nano, requests) per day or month of one user, oldest first."""
        # Days in SQL (integer arithmetic, the same in every engine), named here.
        days = await self._db.fetchall(
            "SELECT hour / 86400 AS day, SUM(cost_nano), SUM(requests) FROM usage_hourly "
            "WHERE owner = ? GROUP BY day ORDER BY day",
            (owner,),
        )
        fmt = "%Y-%m-%d" if granularity == "day" else "%Y-%m"
        periods: dict[str, list[int]] = {}
        for day, cost, requests in days:
            name = dt.datetime.fromtimestamp(int(day) * 86400, dt.UTC).strftime(fmt)
            total = periods.setdefault(name, [0, 0])
            total[0] += int(cost or 0)
            total[1] += int(requests or 0)
        return [(name, cost, requests) for name, (cost, requests) in periods.items()]

    async def route_health(self, since: float) -> list[Any]:
        """(provider, route_model, requests, errors, latency buckets...) since `since`, per
        route that answered, from the request log (the roll-ups know no route model)."""
        return await self._db.fetchall(
            f"SELECT provider, route_model, COUNT(*), "
            f"SUM(CASE WHEN outcome != 'ok' THEN 1 ELSE 0 END), {_LATENCY_BUCKETS} "
            "FROM requests WHERE ts >= ? AND provider IS NOT NULL "
            "GROUP BY provider, route_model ORDER BY provider, route_model",
            (since,),
        )

    async def provider_health(self, since: float) -> list[Any]:
        """(provider, requests, errors, latency_ms_sum, latency buckets...) since `since`."""
        return await self._db.fetchall(
            "SELECT provider, SUM(requests), SUM(errors), SUM(latency_ms_sum), "
            f"{BUCKETS} FROM usage_hourly "
            "WHERE hour >= ? AND provider != '' GROUP BY provider",
            (int(since // 3600 * 3600),),
        )
