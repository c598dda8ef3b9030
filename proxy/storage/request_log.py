"""What one batch of the request log writes, in the SQL both engines share: the rows,
their debug bodies, and the hourly roll-ups they add to, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from proxy.storage.rollup import SUM_COLUMNS, aggregate, upsert_sql
from proxy.storage.rows import DebugRow, RequestRow, storable

if TYPE_CHECKING:  # the seam's drivers stay out of the request log's writing process
    from proxy.storage.database import Transaction

REQUEST_COLUMNS = (
    "request_id",
    "ts",
    "api",
    "key_name",
    "owner",
    "tenant",
    "end_user",
    "agent",
    "alias",
    "provider",
    "route_model",
    "attempts",
    "failed_attempts",
    "outcome",
    "http_status",
    "error_type",
    "error_message",
    "streamed",
    "cached",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "usage_estimated",
    "cost_nano",
    "saved_cost_nano",
    "latency_ms",
    "ttft_ms",
    "overhead_ms",
    "client_ip",
    "user_agent",
    "key_ref",
    "client_request_id",
)
# A row already written (a batch retried after its commit was lost) is left as it is.
INSERT_REQUEST = (
    f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING"
)
_DEBUG_COLUMNS = (
    "request_id",
    "ts",
    "request_headers",
    "request_body",
    "response_headers",
    "response_body",
    "truncated",
)
INSERT_DEBUG = (
    f"INSERT INTO debug_bodies ({', '.join(_DEBUG_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_DEBUG_COLUMNS))}) ON CONFLICT (request_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _DEBUG_COLUMNS[1:])
)
Batch = Sequence[tuple[RequestRow, DebugRow | None]]


async def write_batch(tx: Transaction, batch: Batch, uncertain: bool = False) -> None:
    """`uncertain`: an earlier attempt at these rows may have committed (its reply was
    lost); rows already written are left out, so their roll-ups are not added twice."""
    if uncertain:
        done = await _already_written(tx, [row.request_id for row, _ in batch])
        batch = [(row, debug) for row, debug in batch if row.request_id not in done]
    rows = [row for row, _ in batch]
    await tx.executemany(INSERT_REQUEST, [request_values(r) for r in rows])
    debug = [debug_values(d) for _, d in batch if d is not None]
    if debug:
        await tx.executemany(INSERT_DEBUG, debug)
    rollups = aggregate(rows)
    await tx.executemany(
        upsert_sql(),
        [(*key, *(r.sums[c] for c in SUM_COLUMNS)) for key, r in rollups.items()],
    )


async def _already_written(tx: Transaction, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await tx.fetchall(
            f"SELECT request_id FROM requests WHERE request_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        )
        found.update(r[0] for r in rows)
    return found


def request_values(r: RequestRow) -> tuple[object, ...]:
    failed = orjson.dumps([[a.provider, a.model, a.reason, a.status] for a in r.failed_attempts])
    return (
        r.request_id,
        r.ts,
        r.api,
        storable(r.key_name),
        storable(r.owner),
        storable(r.tenant),
        storable(r.end_user),
        storable(r.agent),
        storable(r.alias),
        storable(r.provider),
        storable(r.route_model),
        r.attempts,
        failed.decode() if r.failed_attempts else None,
        r.outcome,
        r.http_status,
        storable(r.error_type),
        storable(r.error_message),
        int(r.streamed),
        int(r.cached),
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
        int(r.usage_estimated),
        r.cost_nano,
        r.saved_cost_nano,
        r.latency_ms,
        r.ttft_ms,
        r.overhead_ms,
        storable(r.client_ip),
        storable(r.user_agent),
        storable(r.key_ref),
        storable(r.client_request_id),
    )


def debug_values(d: DebugRow) -> tuple[object, ...]:
    return (
        d.request_id,
        d.ts,
        orjson.dumps(d.request_headers).decode(),
        storable(d.request_body),
        orjson.dumps(d.response_headers).decode(),
        storable(d.response_body),
        int(d.truncated),
    )
