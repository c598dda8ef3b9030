"""The configured storage engine: its management connection and its request-log writer."""

from __future__ import annotations

from pathlib import Path

from proxy.config import StorageConfig
from proxy.storage.database import Database, SQLiteDatabase
from proxy.storage.postgres import PostgresDatabase, PostgresLogWriter
from proxy.storage.sqlite import SQLiteLogWriter
from proxy.storage.writer import CLOSE_TIMEOUT_S, BatchedLogWriter, WriterOptions


async def open_database(config: StorageConfig, timeout_s: float = 10.0) -> Database:
    """Connect and bring the schema up to date."""
    if config.backend == "postgresql":
        return await PostgresDatabase.open(
            config.url, password=config.password, pool_size=config.pool_size, timeout_s=timeout_s
        )
    Path(config.database).parent.mkdir(parents=True, exist_ok=True)
    return await SQLiteDatabase.open(config.database, busy_timeout_ms=int(timeout_s * 500))


def log_writer(config: StorageConfig, close_timeout_s: float = CLOSE_TIMEOUT_S) -> BatchedLogWriter:
    options: WriterOptions = {
        "batch_size": config.batch_size,
        "flush_interval_ms": config.flush_interval_ms,
        "queue_limit": config.queue_limit,
        "retention_days": config.retention_days,
        "close_timeout_s": close_timeout_s,
    }
    if config.backend == "postgresql":
        return PostgresLogWriter(config.url, password=config.password, **options)
    return SQLiteLogWriter(config.database, **options)


def describe(config: StorageConfig) -> str:
    """The database as an operator would name it (never with a password)."""
    if config.backend == "postgresql":
        return config.url.partition("?")[0]  # the options stay out of error messages
    return config.database
