"""Users and keys, with their budgets and limits, over HTTP (admin keys)."""

from __future__ import annotations

import time
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from proxy.accounts.store import AccountStore, KeyRecord, User, check_key_fields
from proxy.api.routing import Context, Endpoint, Param
from proxy.errors import InvalidRequest
from proxy.pricing import usd

PAGE = (
    Param("page", int, "1-based page", default=1, minimum=1),
    Param("per_page", int, "items per page (max 200)", default=50, minimum=1),
)


def store(ctx: Context) -> AccountStore:
    return AccountStore(ctx.services.db, actor=ctx.principal.key_name)


def page(items: list[Any], ctx: Context) -> dict[str, Any]:
    per_page = min(int(ctx.params["per_page"]), 200)
    start = (int(ctx.params["page"]) - 1) * per_page
    return {
        "object": "list",
        "data": items[start : start + per_page],
        "page": ctx.params["page"],
        "per_page": per_page,
        "total": len(items),
        "has_more": start + per_page < len(items),
    }


def user_json(user: User) -> dict[str, Any]:
    budget = user.monthly_budget_nano
    return {
        "name": user.name,
        "monthly_budget_usd": None if budget is None else usd(budget),
        "alert_thresholds": list(user.alert_thresholds or ()) or None,
        "created_at": user.created_at,
    }


def key_json(key: KeyRecord) -> dict[str, Any]:
    data = asdict(key)
    data.pop("sha256")
    budget = data.pop("monthly_budget_nano")
    data["monthly_budget_usd"] = None if budget is None else usd(budget)
    data["models"] = list(key.models) if key.models else None
    data["state"] = (
        "active" if key.usable(time.time()) else ("revoked" if not key.active else "expired")
    )
    return data


def _usd(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"'{name}' must be an amount in USD", param=name) from None
    if isinstance(value, bool) or not amount.is_finite() or not 0 <= amount <= 10**9:
        raise InvalidRequest(f"'{name}' must be between 0 and 1000000000", param=name)
    return amount


def _str(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{name}' must be a non-empty string", param=name)
    return value


async def create_user(ctx: Context) -> dict[str, Any]:
    body = ctx.body or {}
    name = _str(body, "name", required=True)
    assert name is not None
    return user_json(await store(ctx).create_user(name, _usd(body, "monthly_budget_usd")))


async def list_users(ctx: Context) -> dict[str, Any]:
    return page([user_json(u) for u in await store(ctx).users()], ctx)


async def update_user(ctx: Context) -> dict[str, Any]:
    body = ctx.body or {}
    thresholds = body.get("alert_thresholds")
    if thresholds is not None and not (
        isinstance(thresholds, list) and all(isinstance(t, int | float) for t in thresholds)
    ):
        raise InvalidRequest(
            "'alert_thresholds' must be a list of numbers", param="alert_thresholds"
        )
    user = await store(ctx).set_user_budget(
        ctx.params["name"], _usd(body, "monthly_budget_usd"), thresholds
    )
    return user_json(user)


# What a key's owner may set, at creation and later; one validation serves both.
KEY_SETTINGS = frozenset({"monthly_budget_usd", "rpm", "tpm", "models", "expires_at"})


def key_settings(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """The store's field names and values for the settings present in `body`."""
    unknown = set(body) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidRequest(f"unknown or unchangeable field {name!r}", param=name)
    settings: dict[str, Any] = {}
    if "monthly_budget_usd" in body:
        budget = _usd(body, "monthly_budget_usd")
        settings["monthly_budget_nano"] = None if budget is None else int(budget.scaleb(9))
    for name in ("rpm", "tpm", "models", "expires_at"):
        if name in body:
            settings[name] = body[name]
    check_key_fields(settings)
    return settings


async def create_key(ctx: Context) -> dict[str, Any]:
    body = ctx.body or {}
    user, name = _str(body, "user", required=True), _str(body, "name", required=True)
    assert user is not None and name is not None
    admin = body.get("admin", False)
    if not isinstance(admin, bool):
        raise InvalidRequest("'admin' must be true or false", param="admin")
    settings = key_settings(body, KEY_SETTINGS | {"user", "name", "admin"})
    budget = settings.get("monthly_budget_nano")
    created = await store(ctx).create_key(
        user,
        name,
        budget_usd=None if budget is None else Decimal(budget).scaleb(-9),
        rpm=settings.get("rpm"),
        tpm=settings.get("tpm"),
        models=settings.get("models"),
        expires_at=settings.get("expires_at"),
        admin=admin,
    )
    return {**key_json(created.record), "secret": created.secret}


async def list_keys(ctx: Context) -> dict[str, Any]:
    return page([key_json(k) for k in await store(ctx).keys(ctx.params["user"])], ctx)


async def update_key(ctx: Context) -> dict[str, Any]:
    changes = key_settings(ctx.body or {}, KEY_SETTINGS)
    return key_json(await store(ctx).update_key(ctx.params["id"], **changes))


async def revoke_key(ctx: Context) -> dict[str, Any]:
    return key_json(await store(ctx).revoke_key(ctx.params["id"]))


USER_BODY = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "monthly_budget_usd": {"type": ["number", "string", "null"]},
    },
}
KEY_BODY = {
    "type": "object",
    "required": ["user", "name"],
    "properties": {
        "user": {"type": "string"},
        "name": {"type": "string"},
        "monthly_budget_usd": {"type": ["number", "string", "null"]},
        "rpm": {"type": ["integer", "null"]},
        "tpm": {"type": ["integer", "null"]},
        "models": {"type": ["array", "null"], "items": {"type": "string"}},
        "expires_at": {"type": ["number", "null"]},
        "admin": {"type": "boolean"},
    },
}
USER_EXAMPLE = {
    "name": "team-a",
    "monthly_budget_usd": "100",
    "alert_thresholds": None,
    "created_at": 1795000000.0,
}
KEY_EXAMPLE = {
    "id": 3,
    "name": "indexer",
    "user": "team-a",
    "prefix": "llmg_AbCdEf",
    "rpm": 600,
    "tpm": None,
    "models": ["fast"],
    "expires_at": None,
    "active": True,
    "admin": False,
    "created_at": 1795000000.0,
    "revoked_at": None,
    "monthly_budget_usd": None,
    "state": "active",
}
ID = Param("id", int, location="path", required=True)
USER_FILTER = Param("user", description="admin keys: whose (default: everyone / your own)")

ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/users",
        "Create a user",
        create_user,
        admin=True,
        body=USER_BODY,
        status=201,
        example=USER_EXAMPLE,
    ),
    Endpoint(
        "GET",
        "/api/users",
        "List users",
        list_users,
        admin=True,
        params=PAGE,
        example={
            "object": "list",
            "data": [USER_EXAMPLE],
            "page": 1,
            "per_page": 50,
            "total": 1,
            "has_more": False,
        },
    ),
    Endpoint(
        "PATCH",
        "/api/users/{name}",
        "Change a user's budget or thresholds",
        update_user,
        admin=True,
        params=(Param("name", location="path", required=True),),
        body={
            "type": "object",
            "properties": {
                "monthly_budget_usd": {"type": ["number", "string", "null"]},
                "alert_thresholds": {"type": "array", "items": {"type": "number"}},
            },
        },
        example=USER_EXAMPLE,
    ),
    Endpoint(
        "POST",
        "/api/keys",
        "Create a key (the secret is shown once)",
        create_key,
        admin=True,
        body=KEY_BODY,
        status=201,
        example={**KEY_EXAMPLE, "secret": "llmg_..."},
    ),
    Endpoint(
        "GET",
        "/api/keys",
        "List keys (never their secrets)",
        list_keys,
        admin=True,
        params=(USER_FILTER, *PAGE),
        example={
            "object": "list",
            "data": [KEY_EXAMPLE],
            "page": 1,
            "per_page": 50,
            "total": 1,
            "has_more": False,
        },
    ),
    Endpoint(
        "PATCH",
        "/api/keys/{id}",
        "Change a key's limits, budget or aliases",
        update_key,
        admin=True,
        params=(ID,),
        body={
            "type": "object",
            "properties": {
                "monthly_budget_usd": {"type": ["number", "string", "null"]},
                "rpm": {"type": ["integer", "null"]},
                "tpm": {"type": ["integer", "null"]},
                "models": {"type": ["array", "null"], "items": {"type": "string"}},
            },
        },
        example=KEY_EXAMPLE,
    ),
    Endpoint(
        "DELETE",
        "/api/keys/{id}",
        "Revoke a key",
        revoke_key,
        admin=True,
        params=(ID,),
        example={**KEY_EXAMPLE, "active": False, "state": "revoked"},
    ),
]
