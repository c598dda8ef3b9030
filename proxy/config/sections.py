"""Readers for the operational sections of gateway.toml: storage, logs, metrics, prices."""

from __future__ import annotations

from decimal import Decimal

from proxy.config.toml import Section
from proxy.config.types import (
    DebugLogConfig,
    LoggingConfig,
    MetricsConfig,
    PriceOverride,
    StorageConfig,
)

LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def read_storage(s: Section) -> StorageConfig:
    config = StorageConfig(
        database=s.string("database", "gateway.db"),
        batch_size=s.integer("batch_size", 200, minimum=1, maximum=100_000),
        flush_interval_ms=s.number("flush_interval_ms", 500, minimum=1),
        queue_limit=s.integer("queue_limit", 100_000, minimum=1),
        retention_days=s.number("retention_days", 90, minimum=0.001),
    )
    if not config.database:
        s.error("database", "must not be empty")
    s.reject_unknown()
    return config


def read_debug_log(s: Section) -> DebugLogConfig:
    config = DebugLogConfig(
        enabled=s.boolean("enabled", False),
        max_body_bytes=s.integer("max_body_bytes", 65536, minimum=0),
    )
    s.reject_unknown()
    return config


def read_logging(s: Section) -> LoggingConfig:
    config = LoggingConfig(
        format=s.choice("format", LOG_FORMATS, "console") or "console",
        level=s.choice("level", LOG_LEVELS, "info") or "info",
    )
    s.reject_unknown()
    return config


def read_metrics(s: Section) -> MetricsConfig:
    config = MetricsConfig(
        port=s.integer("port", 0, minimum=0, maximum=65535),
        per_key_labels=s.boolean("per_key_labels", False),
    )
    s.reject_unknown()
    return config


def read_price_override(s: Section) -> PriceOverride:
    """A route's own prices, USD per 1M tokens, read exactly (no float rounding)."""
    return PriceOverride(
        input=_price(s, "input_price"),
        output=_price(s, "output_price"),
        cached_input=_price(s, "cached_input_price"),
        cache_write=_price(s, "cache_write_price"),
    )


def _price(s: Section, key: str) -> Decimal | None:
    if key not in s.data:
        return None
    value = s.number(key, 0, minimum=0)
    # TOML floats arrive as binary floats; repr gives the shortest text that round-trips,
    # which is what the operator wrote (0.15, not 0.1499999...).
    return Decimal(repr(value)) if isinstance(s.data[key], float) else Decimal(int(value))
