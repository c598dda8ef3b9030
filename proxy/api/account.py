"""The caller's own account: its key, its user, limits, spend, and the audit log."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.api.accounts import PAGE, USER_EXAMPLE, USER_FILTER, page, store, user_json
from proxy.api.routing import Context, Endpoint
from proxy.budgets import Account
from proxy.errors import InvalidRequest, PermissionDenied
from proxy.pricing import usd


async def account(ctx: Context) -> dict[str, Any]:
    principal = ctx.principal
    user = None
    if principal.owner is not None:
        found = await store(ctx).user(principal.owner, missing_ok=True)
        user = None if found is None else user_json(found)
    budgets = ctx.services.access.budgets
    key_spent = await budgets.spent(Account("key", principal.key_ref, None))
    user_spent = (
        None
        if principal.owner is None
        else await budgets.spent(Account("user", principal.owner, None))
    )
    return {
        "key": {
            "name": principal.key_name,
            "admin": principal.admin,
            "rpm": principal.rpm,
            "tpm": principal.tpm,
            "models": sorted(principal.allowed_aliases) if principal.allowed_aliases else None,
            "monthly_budget_usd": None
            if principal.key_budget_nano is None
            else usd(principal.key_budget_nano),
            "spent_this_month_usd": usd(key_spent),
        },
        "user": user,
        "user_spent_this_month_usd": None if user_spent is None else usd(user_spent),
    }


async def activity(ctx: Context) -> dict[str, Any]:
    user = ctx.params["user"] if ctx.admin else own_user(ctx)
    rows = await ctx.services.usage.audit(user)
    items = [
        {
            "id": r[0],
            "ts": r[1],
            "actor": r[2],
            "action": r[3],
            "user": r[4],
            "subject": r[5],
            "detail": None if r[6] is None else orjson.loads(r[6]),
        }
        for r in rows
    ]
    return page(items, ctx)


def own_user(ctx: Context) -> str:
    """The user a request is about: ?user= for admins, else the caller's own user only."""
    asked, owner = ctx.params["user"], ctx.principal.owner
    if ctx.admin:
        if asked or owner:
            return str(asked or owner)
        raise InvalidRequest("this key belongs to no user: pass ?user=", param="user")
    if owner is None:
        raise PermissionDenied("this key belongs to no user; this view is per user", code="no_user")
    if asked and asked != owner:
        raise PermissionDenied("a user's key sees only its own user's data", code="other_user")
    return owner


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/account",
        "The calling key, its user, limits and spend",
        account,
        example={
            "key": {
                "name": "team-a/indexer",
                "admin": False,
                "rpm": 600,
                "tpm": None,
                "models": ["fast"],
                "monthly_budget_usd": None,
                "spent_this_month_usd": "1.25",
            },
            "user": USER_EXAMPLE,
            "user_spent_this_month_usd": "42.5",
        },
    ),
    Endpoint(
        "GET",
        "/api/account/activity",
        "The audit log of management actions",
        activity,
        params=(USER_FILTER, *PAGE),
        example={
            "object": "list",
            "data": [
                {
                    "id": 9,
                    "ts": 1795000000.0,
                    "actor": "cli",
                    "action": "key.revoked",
                    "user": "team-a",
                    "subject": "team-a/old",
                    "detail": None,
                }
            ],
            "page": 1,
            "per_page": 50,
            "total": 1,
            "has_more": False,
        },
    ),
]
