"""Budgets over HTTP: limit, spend, thresholds, a month-end projection, and history."""

from __future__ import annotations

import calendar
import datetime as dt
import time
from typing import Any

from proxy.accounts.store import User
from proxy.api.account import own_user
from proxy.api.accounts import USER_FILTER, store
from proxy.api.routing import Context, Endpoint, Param
from proxy.budgets import Account, month_start
from proxy.pricing import usd


async def budget(ctx: Context) -> dict[str, Any]:
    name = own_user(ctx)
    user = await store(ctx).user(name)
    assert user is not None
    return budget_view(
        user,
        await ctx.services.access.budgets.spent(Account("user", name, None)),
        time.time(),
        ctx.services.access.thresholds,
    )


def budget_view(user: User, spent: int, now: float, default: tuple[float, ...]) -> dict[str, Any]:
    """Limit, spend, and a month-end projection from the daily run rate so far."""
    start = month_start(now)
    day = dt.datetime.fromtimestamp(now, dt.UTC)
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    elapsed_days = max((now - start) / 86400, 1 / 24)  # at least an hour of data
    projected = int(spent / elapsed_days * days_in_month)
    limit = user.monthly_budget_nano
    thresholds = user.alert_thresholds or default
    return {
        "user": user.name,
        "period": day.strftime("%Y-%m"),
        "limit_usd": None if limit is None else usd(limit),
        "spent_usd": usd(spent),
        "remaining_usd": None if limit is None else usd(max(0, limit - spent)),
        "percent_used": None if not limit else round(100 * spent / limit, 2),
        "thresholds_crossed": [] if not limit else [t for t in thresholds if spent >= t * limit],
        "projected_month_end_usd": usd(projected),
        "projected_over_budget": None if limit is None else projected > limit,
    }


async def budget_history(ctx: Context) -> dict[str, Any]:
    name = own_user(ctx)
    rows = await ctx.services.usage.spend_history(name, ctx.params["granularity"])
    return {
        "user": name,
        "granularity": ctx.params["granularity"],
        "data": [
            {"period": r[0], "spent_usd": usd(int(r[1] or 0)), "requests": r[2]} for r in rows
        ],
    }


BUDGET_EXAMPLE = {
    "user": "team-a",
    "period": "2026-11",
    "limit_usd": "100",
    "spent_usd": "42.5",
    "remaining_usd": "57.5",
    "percent_used": 42.5,
    "thresholds_crossed": [],
    "projected_month_end_usd": "57.95",
    "projected_over_budget": False,
}
ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/budget",
        "Budget, spend and month-end projection",
        budget,
        params=(USER_FILTER,),
        example=BUDGET_EXAMPLE,
    ),
    Endpoint(
        "GET",
        "/api/budget/history",
        "Spend per day or month",
        budget_history,
        params=(USER_FILTER, Param("granularity", choices=("day", "month"), default="day")),
        example={
            "user": "team-a",
            "granularity": "day",
            "data": [{"period": "2026-11-21", "spent_usd": "3.1", "requests": 812}],
        },
    ),
]
