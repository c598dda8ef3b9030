"""Numbered schema migrations, applied in order at start-up; applied names are recorded.

Append new migrations to MIGRATIONS; never edit one that has shipped.
"""

from __future__ import annotations

import time

import aiosqlite

from proxy.accounts.audit import AUDIT_V1
from proxy.accounts.schema import ACCOUNTS_V1
from proxy.storage.rollup import BUCKET_COLUMNS
from proxy.storage.sqlite_process import pragmas

REQUEST_INDEXES = (
    "ts",
    "key_name",
    "owner",
    "alias",
    "provider",
    "outcome",
    "tenant",
    "end_user",
    "agent",
)

REQUESTS_V1 = (
    """
    CREATE TABLE requests (
        request_id TEXT NOT NULL UNIQUE,
        ts REAL NOT NULL,
        endpoint TEXT NOT NULL,
        key_name TEXT, owner TEXT, tenant TEXT, end_user TEXT, agent TEXT,
        alias TEXT, provider TEXT, route_model TEXT,
        attempts INTEGER NOT NULL,
        failed_attempts TEXT,
        outcome TEXT NOT NULL,
        http_status INTEGER NOT NULL,
        error_type TEXT, error_message TEXT,
        streamed INTEGER NOT NULL, cached INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL, usage_estimated INTEGER NOT NULL,
        cost_nano INTEGER, saved_cost_nano INTEGER NOT NULL,
        latency_ms REAL NOT NULL, ttft_ms REAL, overhead_ms REAL NOT NULL,
        client_ip TEXT, user_agent TEXT
    )
    """,
    *(
        f"CREATE INDEX requests_{c} ON requests ({c}{', ts' if c != 'ts' else ''})"
        for c in REQUEST_INDEXES
    ),
    """
    CREATE TABLE debug_bodies (
        request_id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        request_headers TEXT, request_body TEXT,
        response_headers TEXT, response_body TEXT,
        truncated INTEGER NOT NULL
    )
    """,
    "CREATE INDEX debug_bodies_ts ON debug_bodies (ts)",
    f"""
    CREATE TABLE usage_hourly (
        hour INTEGER NOT NULL,
        key_name TEXT NOT NULL, owner TEXT NOT NULL, alias TEXT NOT NULL, provider TEXT NOT NULL,
        requests INTEGER NOT NULL, errors INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL, cost_nano INTEGER NOT NULL,
        unknown_cost_requests INTEGER NOT NULL, saved_cost_nano INTEGER NOT NULL,
        latency_ms_sum REAL NOT NULL, ttft_ms_sum REAL NOT NULL, ttft_count INTEGER NOT NULL,
        {", ".join(f"{c} INTEGER NOT NULL" for c in BUCKET_COLUMNS)},
        PRIMARY KEY (hour, key_name, owner, alias, provider)
    )
    """,
    "CREATE INDEX usage_hourly_owner ON usage_hourly (owner, hour)",
    "CREATE INDEX usage_hourly_key ON usage_hourly (key_name, hour)",
)

# Roll-up value columns as of 006; later migrations name their own.
_ROLLUP_VALUES_006 = (
    "requests, errors, cache_hits, prompt_tokens, completion_tokens, cached_tokens, "
    "cost_nano, unknown_cost_requests, saved_cost_nano, latency_ms_sum, ttft_ms_sum, "
    "ttft_count, " + ", ".join(BUCKET_COLUMNS)
)

# Keys are identified by id, not by their "user/key" display name (two users' names can
# coincide); the gateway's request id is the log's key, the client's own is searchable.
KEY_IDS_V1 = (
    "ALTER TABLE requests ADD COLUMN key_ref TEXT",
    "ALTER TABLE requests ADD COLUMN client_request_id TEXT",
    "CREATE INDEX requests_client_request_id ON requests (client_request_id) "
    "WHERE client_request_id IS NOT NULL",
    f"""
    CREATE TABLE usage_hourly_v2 (
        hour INTEGER NOT NULL,
        key_ref TEXT NOT NULL,
        key_name TEXT NOT NULL, owner TEXT NOT NULL, alias TEXT NOT NULL, provider TEXT NOT NULL,
        requests INTEGER NOT NULL, errors INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        cached_tokens INTEGER NOT NULL, cost_nano INTEGER NOT NULL,
        unknown_cost_requests INTEGER NOT NULL, saved_cost_nano INTEGER NOT NULL,
        latency_ms_sum REAL NOT NULL, ttft_ms_sum REAL NOT NULL, ttft_count INTEGER NOT NULL,
        {", ".join(f"{c} INTEGER NOT NULL" for c in BUCKET_COLUMNS)},
        PRIMARY KEY (hour, key_ref, key_name, owner, alias, provider)
    )
    """,
    # Earlier rows knew keys by name only: map each to its key's id where it is unambiguous.
    f"""
    INSERT INTO usage_hourly_v2 (hour, key_ref, key_name, owner, alias, provider,
                                 {_ROLLUP_VALUES_006})
    SELECT hour,
           CASE WHEN key_name = '' THEN '' ELSE COALESCE(
               (SELECT 'key:' || id FROM api_keys a
                WHERE a.user_name || '/' || a.name = u.key_name ORDER BY id LIMIT 1),
               'static:' || key_name) END,
           key_name, owner, alias, provider, {_ROLLUP_VALUES_006}
    FROM usage_hourly u
    """,
    "DROP TABLE usage_hourly",
    "ALTER TABLE usage_hourly_v2 RENAME TO usage_hourly",
    "CREATE INDEX usage_hourly_owner ON usage_hourly (owner, hour)",
    "CREATE INDEX usage_hourly_key ON usage_hourly (key_ref, hour)",
    "CREATE INDEX usage_hourly_key_name ON usage_hourly (key_name, hour)",
)

BUDGET_ALERTS_V1 = (
    """
    CREATE TABLE budget_alerts (
        period TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, threshold REAL NOT NULL,
        fired_at REAL NOT NULL,
        PRIMARY KEY (period, kind, name, threshold)
    )
    """,
)

CREDENTIALS_V1 = (
    """
    CREATE TABLE credentials (
        id INTEGER PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users(name),
        provider TEXT NOT NULL,
        ciphertext BLOB NOT NULL,             -- Fernet token; the key never in clear
        masked TEXT NOT NULL,                 -- first 4 and last 4 characters
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (user_name, provider)
    )
    """,
)

# The request log names the API a request used (chat, responses, messages, ...): with
# three dialects answering on one alias, that is what a row's "endpoint" meant.
API_COLUMN_V1 = ("ALTER TABLE requests RENAME COLUMN endpoint TO api",)

# Responses API state (`store`, `previous_response_id`): see proxy.storage.responses.
STORED_RESPONSES_V1 = (
    """
    CREATE TABLE stored_responses (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,                  -- user:<name> or the static key's key_ref
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        previous_id TEXT,
        input TEXT NOT NULL,                  -- this turn's input items, JSON
        response TEXT NOT NULL                -- the Response as the client got it, JSON
    )
    """,
    "CREATE INDEX stored_responses_expiry ON stored_responses (expires_at)",
)

MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    ("001_request_log", REQUESTS_V1),
    ("002_accounts", ACCOUNTS_V1),
    ("003_budget_alerts", BUDGET_ALERTS_V1),
    ("004_credentials", CREDENTIALS_V1),
    ("005_audit_log", AUDIT_V1),
    ("006_key_ids", KEY_IDS_V1),
    ("007_api_column", API_COLUMN_V1),
    ("008_stored_responses", STORED_RESPONSES_V1),
]


async def migrate(db: aiosqlite.Connection) -> list[str]:
    """Apply what is missing, each migration in its own transaction; return their names."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)"
    )
    await db.commit()
    async with db.execute("SELECT name FROM _migrations") as cursor:
        done = {row[0] for row in await cursor.fetchall()}
    applied = []
    for name, statements in MIGRATIONS:
        if name in done:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                await db.execute(statement)
            await db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
        except BaseException:
            await db.rollback()
            raise
        await db.commit()
        applied.append(name)
    return applied


async def open_database(path: str, busy_timeout_ms: int = 5000) -> aiosqlite.Connection:
    """A connection in WAL mode with the schema up to date.

    On any failure the connection is closed before the error propagates: aiosqlite's
    worker thread is not a daemon, so a connection left open keeps the process alive.
    """
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        for pragma in pragmas(busy_timeout_ms):
            await db.execute(pragma)
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db
