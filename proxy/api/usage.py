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

DAY = 86400
RANGE = (
    Param("since", float, "unix seconds (default: 24 hours ago)", minimum=0),
    Param("until", float, "unix seconds (default: now)", minimum=0),
)
BUCKETS = ", ".join(f"SUM({name})" for name, _ in LATENCY_BUCKETS_MS)


def _range(ctx: Context) -> tuple[float, float]:
    until = ctx.params["until"] or time.time()
    since = ctx.params["since"] if ctx.params["since"] is not None else until - DAY
    if since > until:
        raise InvalidRequest("'since' must not be after 'until'", param="since")
    return since, until


def _owner_filter(ctx: Context, column: str = "owner") -> tuple[str, list[Any]]:
    """Admins see everyone (or ?user=); a user's key sees its own user only."""
    asked = ctx.params.get("user")
    if ctx.admin:
        return (f" AND {column} = ?", [asked]) if asked else ("", [])
    owner = ctx.principal.owner
    if owner is None:
        raise PermissionDenied(
            "this key belongs to no user; usage views are per user", code="no_user"
        )
    if asked and asked != owner:
        raise PermissionDenied("a user's key sees only its own user's usage", code="other_user")
    return f" AND {column} = ?", [owner]


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
    where, args = _owner_filter(ctx)
    sql = (
        "SELECT {group}, SUM(requests), SUM(errors), SUM(cache_hits), SUM(prompt_tokens), "
        f"SUM(completion_tokens), SUM(cost_nano), SUM(latency_ms_sum), {BUCKETS} "
        f"FROM usage_hourly WHERE hour >= ? AND hour < ?{where} GROUP BY {{group}}"
    )
    bounds = [since // 3600 * 3600, until]
    totals = await _rows(ctx, sql.format(group="'all'"), [*bounds, *args])
    by_provider = await _rows(ctx, sql.format(group="provider"), [*bounds, *args])
    by_model = await _rows(ctx, sql.format(group="alias"), [*bounds, *args])
    return {
        "since": since,
        "until": until,
        **(_stats(totals[0]) if totals else _stats(None)),
        "by_provider": {r[0] or "none": _stats(r) for r in by_provider},
        "by_model": {r[0] or "other": _stats(r) for r in by_model},
    }


async def _rows(ctx: Context, sql: str, args: list[Any]) -> list[Any]:
    async with ctx.services.db.execute(sql, args) as cursor:
        return list(await cursor.fetchall())


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
    where, args = _owner_filter(ctx)
    span = f"FROM usage_hourly WHERE hour >= ? AND hour < ?{where}"
    bounds = [since // 3600 * 3600, until, *args]
    bucket = f"(hour / {step}) * {step}"
    if kind == "cost":
        rows = await _rows(
            ctx, f"SELECT {bucket} AS t, SUM(cost_nano) {span} GROUP BY t ORDER BY t", bounds
        )
        series = [{"name": "cost_usd", "points": [[t, usd(int(v or 0))] for t, v in rows]}]
    elif kind == "tokens":
        rows = await _rows(
            ctx,
            f"SELECT {bucket} AS t, SUM(prompt_tokens), "
            f"SUM(completion_tokens) {span} GROUP BY t ORDER BY t",
            bounds,
        )
        series = [
            {"name": "prompt_tokens", "points": [[t, p] for t, p, _ in rows]},
            {"name": "completion_tokens", "points": [[t, c] for t, _, c in rows]},
        ]
    elif kind == "requests_by_model":
        rows = await _rows(
            ctx,
            f"SELECT alias, {bucket} AS t, SUM(requests) {span} "
            "GROUP BY alias, t ORDER BY alias, t",
            bounds,
        )
        grouped: dict[str, list[list[Any]]] = {}
        for alias, t, n in rows:
            grouped.setdefault(alias or "other", []).append([t, n])
        series = [{"name": name, "points": points} for name, points in grouped.items()]
    else:
        rows = await _rows(
            ctx, f"SELECT {bucket} AS t, {BUCKETS} {span} GROUP BY t ORDER BY t", bounds
        )
        series = [
            {
                "name": name,
                "points": [[r[0], percentile([int(c or 0) for c in r[1:]], q)] for r in rows],
            }
            for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
        ]
    return {"type": kind, "bucket_seconds": step, "since": since, "until": until, "series": series}


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


async def requests_log(ctx: Context) -> dict[str, Any]:
    since, until = _range(ctx)
    clauses, args = ["ts >= ?", "ts < ?"], [since, until]
    for name in FILTERS:
        value = ctx.params.get(name)
        if value is not None:
            clauses.append(f"{name} = ?")
            args.append(value)
    if ctx.params["status"] is not None:
        clauses.append("http_status = ?")
        args.append(ctx.params["status"])
    where, scope_args = _owner_filter(ctx)
    cursor = ctx.params["cursor"]
    if cursor:
        ts, rowid = _decode_cursor(cursor)
        clauses.append("(ts < ? OR (ts = ? AND rowid < ?))")
        args += [ts, ts, rowid]
    limit = min(ctx.params["limit"], 500)
    rows = await _rows(
        ctx,
        f"SELECT rowid, * FROM requests WHERE {' AND '.join(clauses)}{where} "
        "ORDER BY ts DESC, rowid DESC LIMIT ?",
        [*args, *scope_args, limit + 1],
    )
    names = await _columns(ctx)
    items = [_request(dict(zip(["rowid", *names], r, strict=True))) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = (
        _encode_cursor(rows[limit - 1][names.index("ts") + 1], rows[limit - 1][0]) if more else None
    )
    return {"object": "list", "data": items, "has_more": more, "next_cursor": next_cursor}


async def one_request(ctx: Context) -> dict[str, Any]:
    where, scope_args = _owner_filter(ctx)
    rows = await _rows(
        ctx,
        f"SELECT rowid, * FROM requests WHERE request_id = ?{where}",
        [ctx.params["request_id"], *scope_args],
    )
    if not rows:
        raise NotFound("no such request (or not yours)", param="request_id")
    names = await _columns(ctx)
    item = _request(dict(zip(["rowid", *names], rows[0], strict=True)))
    debug = await _rows(
        ctx,
        "SELECT request_headers, request_body, response_headers, "
        "response_body, truncated FROM debug_bodies WHERE request_id = ?",
        [ctx.params["request_id"]],
    )
    item["debug"] = (
        None
        if not debug
        else {
            "request_headers": orjson.loads(debug[0][0] or "{}"),
            "request_body": debug[0][1],
            "response_headers": orjson.loads(debug[0][2] or "{}"),
            "response_body": debug[0][3],
            "truncated": bool(debug[0][4]),
        }
    )
    return item


async def _columns(ctx: Context) -> list[str]:
    rows = await _rows(ctx, "SELECT name FROM pragma_table_info('requests')", [])
    return [r[0] for r in rows]


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
