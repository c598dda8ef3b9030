"""Hourly roll-ups of the request log, aggregated per batch before they are written.

Roll-up key: (hour, key_ref, key_name, owner, alias, provider), '' for a missing part. The
key's identity is key_ref; key_name rides along for display. The latency
histogram has one column per bucket (not cumulative): a request counts in the first
bucket whose bound is at least its latency; `le_inf` takes the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from proxy.storage.rows import RequestRow, storable

# Upper bounds in milliseconds; column names say them in a readable unit.
LATENCY_BUCKETS_MS: tuple[tuple[str, float], ...] = (
    ("le_50ms", 50),
    ("le_100ms", 100),
    ("le_250ms", 250),
    ("le_500ms", 500),
    ("le_1s", 1_000),
    ("le_2_5s", 2_500),
    ("le_5s", 5_000),
    ("le_10s", 10_000),
    ("le_30s", 30_000),
    ("le_60s", 60_000),
    ("le_inf", float("inf")),
)
BUCKET_COLUMNS = tuple(name for name, _ in LATENCY_BUCKETS_MS)
KEY_COLUMNS = ("hour", "key_ref", "key_name", "owner", "alias", "provider")
SUM_COLUMNS = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_nano",
    "unknown_cost_requests",
    "saved_cost_nano",
    "latency_ms_sum",
    "ttft_ms_sum",
    "ttft_count",
    *BUCKET_COLUMNS,
)
RollupKey = tuple[int, str, str, str, str, str]


@dataclass(slots=True)
class Rollup:
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SUM_COLUMNS, 0))

    def add(self, row: RequestRow) -> None:
        s = self.sums
        s["requests"] += 1
        s["errors"] += row.outcome != "ok"
        s["cache_hits"] += row.cached
        s["prompt_tokens"] += row.prompt_tokens
        s["completion_tokens"] += row.completion_tokens
        s["cached_tokens"] += row.cached_tokens
        if row.cost_nano is None:
            s["unknown_cost_requests"] += 1
        else:
            s["cost_nano"] += row.cost_nano
        s["saved_cost_nano"] += row.saved_cost_nano
        s["latency_ms_sum"] += row.latency_ms
        if row.ttft_ms is not None:
            s["ttft_ms_sum"] += row.ttft_ms
            s["ttft_count"] += 1
        s[bucket_for(row.latency_ms)] += 1


def bucket_for(latency_ms: float) -> str:
    for name, bound in LATENCY_BUCKETS_MS:
        if latency_ms <= bound:
            return name
    return "le_inf"


def rollup_key(row: RequestRow) -> RollupKey:
    hour = int(row.ts // 3600 * 3600)
    return (
        hour,
        storable(row.key_ref) or "",
        storable(row.key_name) or "",
        storable(row.owner) or "",
        storable(row.alias) or "",
        storable(row.provider) or "",
    )


def aggregate(rows: Iterable[RequestRow]) -> dict[RollupKey, Rollup]:
    rollups: dict[RollupKey, Rollup] = {}
    for row in rows:
        key = rollup_key(row)
        rollup = rollups.get(key)
        if rollup is None:  # not setdefault: that would build a Rollup for every row
            rollup = rollups[key] = Rollup()
        rollup.add(row)
    return rollups


def upsert_sql() -> str:
    columns = (*KEY_COLUMNS, *SUM_COLUMNS)
    updates = ", ".join(f"{c} = usage_hourly.{c} + excluded.{c}" for c in SUM_COLUMNS)
    return (
        f"INSERT INTO usage_hourly ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {updates}"
    )
