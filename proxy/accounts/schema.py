"""Tables for users, keys and what happens to them (applied as a storage migration)."""

from __future__ import annotations

ACCOUNTS_V1 = (
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        monthly_budget_nano INTEGER,          -- NULL: no budget
        alert_thresholds TEXT,                -- JSON list of fractions; NULL: the default
        created_at REAL NOT NULL
    )
    """,
    """
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        user_name TEXT NOT NULL REFERENCES users(name),
        sha256 TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,                 -- shown in listings instead of the secret
        monthly_budget_nano INTEGER,
        rpm INTEGER,
        tpm INTEGER,
        models TEXT,                          -- JSON list of aliases; NULL: every alias
        expires_at REAL,
        active INTEGER NOT NULL DEFAULT 1,
        admin INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        revoked_at REAL,
        UNIQUE (user_name, name)
    )
    """,
    "CREATE INDEX api_keys_user ON api_keys (user_name)",
    # Bumped by every change to users or keys, so running gateways notice (and reload
    # their in-memory key table) within their polling interval.
    "CREATE TABLE accounts_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER)",
    "INSERT INTO accounts_version (id, version) VALUES (1, 0)",
)
