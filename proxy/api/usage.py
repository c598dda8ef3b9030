"""Usage analytics from the request log: summaries and charts from the hourly roll-ups
(aggregate SQL, no Python loop over raw rows), and the raw log itself, paged by cursor."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from proxy.api.routing import Context, Endpoint, Param
from proxy.errors import InvalidRequest, NotFound, PermissionDenied
from proxy.pricing import usd
from proxy.storage.rollup import LATENCY_BUCKETS_MS
from proxy.storage.usage import FILTERS

DAY = 86400
RANGE = (
    Param("since", float, "unix seconds (default: 24 hours ago)", minimum=0),
    Param("until", float, "unix seconds (default: now)", minimum=0),
)


def _range(ctx: Context) -> tuple[float, float]:
    until = ctx.params["until"] or time.time()
    since = ctx.params["since"] if ctx.params["since"] is not None else until - DAY
    if since > until:
        raise InvalidRequest("'since' must not be after 'until'", param="since")
    return since, until


def _owner(ctx: Context) -> str | None:
    """Admins see everyone (or ?user=); a user's key sees its own user only."""
    asked = ctx.params.get("user")
    if ctx.admin:
        return asked or None
    owner = ctx.principal.owner
    if owner is None:
        raise PermissionDenied(
            "this key belongs to no user; usage views are per user", code="no_user"
        )
    if asked and asked != owner:
        raise PermissionDenied("a user's key sees only its own user's usage", code="other_user")
    return owner


def percentile(counts: list[int], q: float) -> float | None:
    """Estimated from the roll-up histogram, interpolating inside the bucket."""
    total = sum(counts)
    if not total:
        return None
    target, seen, lower = q * total, 0, 0.0
    for count, (_, upper) in zip(counts, LATENCY_BUCKETS_MS, strict=True):
        if seen + count >= target and count:
            if upper == float("inf"):
                return lower
            return round(lower + (upper - lower) * (target - seen) / count, 3)
        seen += count
        lower = upper if upper != float("inf") else lower
    return lower


async def summary(ctx: Context) -> dict[str, Any]:
    since, until = _range(ctx)
    owner = _owner(ctx)
    usage = ctx.services.usage
    totals = await usage.totals(since, until, owner, None)
    by_provider = await usage.totals(since, until, owner, "provider")
    by_model = await usage.totals(since, until, owner, "alias")
    return {
        "since": since,
        "until": until,
        **(_stats(totals[0]) if totals else _stats(None)),
        "by_provider": {r[0] or "none": _stats(r) for r in by_provider},
        "by_model": {r[0] or "other": _stats(r) for r in by_model},
    }


def _stats(row: Any) -> dict[str, Any]:
    if row is None or not row[1]:
        return {
            "requests": 0,
            "errors": 0,
            "error_rate": None,
            "cache_hit_rate": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": "0",
            "latency_ms": {"avg": None, "p50": None, "p95": None, "p99": None},
        }
    requests, errors, hits, prompt, completion, cost, latency = row[1:8]
    counts = [int(c or 0) for c in row[8:]]
    return {
        "requests": requests,
        "errors": errors,
        "error_rate": round(errors / requests, 4),
        "cache_hit_rate": round(hits / requests, 4),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": usd(int(cost)),
        "latency_ms": {
            "avg": round(latency / requests, 3),
            "p50": percentile(counts, 0.5),
            "p95": percentile(counts, 0.95),
            "p99": percentile(counts, 0.99),
        },
    }


CHARTS = ("cost", "tokens", "requests_by_model", "latency")


async def charts(ctx: Context) -> dict[str, Any]:
    since, until = _range(ctx)
    kind, step = ctx.params["type"], 3600 if ctx.params["bucket"] == "hour" else DAY
    rows = await ctx.services.usage.chart(kind, step, since, until, _owner(ctx))
    if kind == "cost":
        series = [{"name": "cost_usd", "points": [[t, usd(int(v or 0))] for t, v in rows]}]
    elif kind == "tokens":
        series = [
            {"name": "prompt_tokens", "points": [[t, p] for t, p, _ in rows]},
            {"name": "completion_tokens", "points": [[t, c] for t, _, c in rows]},
        ]
    elif kind == "requests_by_model":
        grouped: dict[str, list[list[Any]]] = {}
        for alias, t, n in rows:
            grouped.setdefault(alias or "other", []).append([t, n])
        series = [{"name": name, "points": points} for name, points in grouped.items()]
    else:
        series = [
            {
                "name": name,
                "points": [[r[0], percentile([int(c or 0) for c in r[1:]], q)] for r in rows],
            }
            for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
        ]
    return {"type": kind, "bucket_seconds": step, "since": since, "until": until, "series": series}


BREAKDOWNS = ("model", "provider", "key", "tenant", "agent")


async def breakdown(ctx: Context) -> dict[str, Any]:
    since, until = _range(ctx)
    by = ctx.params["by"]
    rows = await ctx.services.usage.breakdown(by, since, until, _owner(ctx))
    return {
        "by": by,
        "since": since,
        "until": until,
        "data": [
            {
                "name": name or None,
                "requests": int(requests or 0),
                "errors": int(errors or 0),
                "prompt_tokens": int(prompt or 0),
                "completion_tokens": int(completion or 0),
                "cost_usd": usd(int(cost or 0)),
            }
            for name, requests, errors, prompt, completion, cost in rows
        ],
    }


async def requests_log(ctx: Context) -> dict[str, Any]:
    since, until = _range(ctx)
    cursor = ctx.params["cursor"]
    limit = min(ctx.params["limit"], 500)
    rows = await ctx.services.usage.requests(
        since,
        until,
        {name: ctx.params.get(name) for name in FILTERS},
        ctx.params["status"],
        _owner(ctx),
        _decode_cursor(cursor) if cursor else None,
        limit + 1,
    )
    more = len(rows) > limit
    next_cursor = _encode_cursor(rows[limit - 1]["ts"], rows[limit - 1]["rowid"]) if more else None
    items = [_request(row) for row in rows[:limit]]
    return {"object": "list", "data": items, "has_more": more, "next_cursor": next_cursor}


async def one_request(ctx: Context) -> dict[str, Any]:
    usage = ctx.services.usage
    row = await usage.request(ctx.params["request_id"], _owner(ctx))
    if row is None:
        raise NotFound("no such request (or not yours)", param="request_id")
    item = _request(row)
    # Bodies are what callers sent and got: an operator's to read, not every key's.
    debug = await usage.debug_bodies(ctx.params["request_id"]) if ctx.admin else None
    item["debug"] = (
        None
        if debug is None
        else {
            "request_headers": orjson.loads(debug[0] or "{}"),
            "request_body": debug[1],
            "response_headers": orjson.loads(debug[2] or "{}"),
            "response_body": debug[3],
            "truncated": bool(debug[4]),
        }
    )
    return item


def _request(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("rowid", None)
    failed = orjson.loads(row.pop("failed_attempts") or "[]")
    row["failed_attempts"] = [
        {"provider": p, "model": m, "reason": r, "status": s} for p, m, r, s in failed
    ]
    for flag in ("streamed", "cached", "usage_estimated"):
        row[flag] = bool(row[flag])
    cost = row.pop("cost_nano")
    row["cost_usd"] = None if cost is None else usd(cost)
    row["saved_cost_usd"] = usd(row.pop("saved_cost_nano") or 0)
    return row


def _encode_cursor(ts: float, rowid: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts, rowid])).decode()


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        ts, rowid = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(ts), int(rowid)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidRequest("'cursor' is not one this API returned", param="cursor") from None


USER = Param("user", description="admin keys: one user's usage (default: everyone)")
SUMMARY_EXAMPLE = {
    "since": 1795000000.0,
    "until": 1795086400.0,
    "requests": 1200,
    "errors": 12,
    "error_rate": 0.01,
    "cache_hit_rate": 0.08,
    "prompt_tokens": 480000,
    "completion_tokens": 96000,
    "cost_usd": "1.23",
    "latency_ms": {"avg": 812.4, "p50": 640.0, "p95": 2100.0, "p99": 4800.0},
    "by_provider": {},
    "by_model": {},
}
REQUEST_EXAMPLE = {
    "request_id": "9f2c...",
    "ts": 1795000000.0,
    "api": "chat",
    "key_name": "team-a/indexer",
    "owner": "team-a",
    "alias": "fast",
    "provider": "openai",
    "route_model": "gpt-4o-mini",
    "attempts": 1,
    "failed_attempts": [],
    "outcome": "ok",
    "http_status": 200,
    "cost_usd": "0.00045",
    "latency_ms": 812.4,
}

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/usage/summary",
        "Requests, tokens, cost, errors, latency percentiles",
        summary,
        params=(*RANGE, USER),
        example=SUMMARY_EXAMPLE,
    ),
    Endpoint(
        "GET",
        "/api/usage/breakdown",
        "Requests, tokens and cost per model, provider, key, tenant or agent",
        breakdown,
        params=(Param("by", choices=BREAKDOWNS, required=True), *RANGE, USER),
        example={
            "by": "model",
            "since": 1795000000.0,
            "until": 1795086400.0,
            "data": [
                {
                    "name": "fast",
                    "requests": 812,
                    "errors": 3,
                    "prompt_tokens": 401200,
                    "completion_tokens": 98100,
                    "cost_usd": "0.12",
                }
            ],
        },
    ),
    Endpoint(
        "GET",
        "/api/usage/requests",
        "The request log, newest first",
        requests_log,
        params=(
            *RANGE,
            USER,
            *(Param(n) for n in FILTERS if n != "owner"),
            Param("owner", description="the key's user (admin keys)"),
            Param("status", int, "HTTP status"),
            Param("cursor", description="next_cursor of the previous page"),
            Param("limit", int, "rows per page (max 500)", default=50, minimum=1),
        ),
        example={
            "object": "list",
            "data": [REQUEST_EXAMPLE],
            "has_more": True,
            "next_cursor": "WzE3OTUwMDAwMDAuMCwgNDJd",
        },
    ),
    Endpoint(
        "GET",
        "/api/usage/requests/{request_id}",
        "One request, its attempts and bodies",
        one_request,
        params=(Param("request_id", location="path", required=True), USER),
        example={**REQUEST_EXAMPLE, "debug": None},
    ),
    Endpoint(
        "GET",
        "/api/usage/charts",
        "Ready-to-plot series",
        charts,
        params=(
            Param("type", choices=CHARTS, required=True),
            Param("bucket", choices=("hour", "day"), default="hour"),
            *RANGE,
            USER,
        ),
        example={
            "type": "cost",
            "bucket_seconds": 3600,
            "since": 1795000000.0,
            "until": 1795086400.0,
            "series": [{"name": "cost_usd", "points": [[1795000000, "0.42"]]}],
        },
    ),
]
