"""Readers for the operational sections of gateway.toml: storage, logs, metrics, prices."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import unquote

from proxy.config.toml import Section
from proxy.config.types import (
    AlertsConfig,
    BudgetsConfig,
    CacheConfig,
    CredentialsConfig,
    DebugLogConfig,
    LoggingConfig,
    MetricsConfig,
    PriceOverride,
    ResponsesConfig,
    StateConfig,
    StorageConfig,
    TracingConfig,
)

LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def read_storage(s: Section, env: Mapping[str, str]) -> StorageConfig:
    password_env = s.string("password_env", "")
    config = StorageConfig(
        backend=s.choice("backend", ("sqlite", "postgresql"), "sqlite") or "sqlite",
        database=s.string("database", "gateway.db"),
        url=s.string("url", ""),
        password_env=password_env,
        password=env.get(password_env) or None if password_env else None,
        pool_size=s.integer("pool_size", 10, minimum=1, maximum=1000),
        batch_size=s.integer("batch_size", 200, minimum=1, maximum=100_000),
        flush_interval_ms=s.number("flush_interval_ms", 500, minimum=1),
        queue_limit=s.integer("queue_limit", 100_000, minimum=1),
        retention_days=s.number("retention_days", 90, minimum=0.001),
    )
    if config.backend == "sqlite" and not config.database:
        s.error("database", "must not be empty")
    if config.backend == "postgresql":
        if not config.url.startswith(("postgresql://", "postgres://")):
            s.error("url", "must be a postgresql:// URL when backend is postgresql")
        _no_password_in_url(s, config.url)
    s.reject_unknown()
    return config


def _no_password_in_url(s: Section, url: str) -> None:
    userinfo = url.split("//", 1)[-1].split("@", 1)[0] if "@" in url else ""
    query = url.partition("?")[2].lower()
    if ":" in userinfo or "password=" in query:
        s.error("url", "must not hold a password; name its variable in password_env")


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


def read_metrics(s: Section, env: Mapping[str, str]) -> MetricsConfig:
    token_env = s.string("bearer_token_env", "")
    token = env.get(token_env) if token_env else None
    if token_env and not token:
        # Starting with the scrape open would expose what the operator meant to protect.
        s.error("bearer_token_env", f"names {token_env}, which is not set")
    config = MetricsConfig(
        port=s.integer("port", 0, minimum=0, maximum=65535),
        per_key_labels=s.boolean("per_key_labels", False),
        host=s.string("host", ""),
        bearer_token_env=token_env,
        bearer_token=token,
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


CACHE_SCOPES = ("user", "key", "global")


def read_budgets(s: Section) -> BudgetsConfig:
    reserve = _price(s, "default_reserve_usd")
    thresholds = s.number_list("alert_thresholds", (0.5, 0.8, 1.0))
    if any(not 0 < t <= 10 for t in thresholds):
        s.error("alert_thresholds", "must be fractions of the budget, e.g. [0.5, 0.8, 1.0]")
    drain = s.number("usage_drain_s", 5, minimum=0, maximum=600)
    s.reject_unknown()
    return BudgetsConfig(
        default_reserve_usd=Decimal("0.05") if reserve is None else reserve,
        alert_thresholds=tuple(sorted(thresholds)),
        usage_drain_s=drain,
    )


def read_alerts(s: Section) -> AlertsConfig:
    url = s.string("webhook_url", "")
    if url and not url.startswith(("http://", "https://")):
        s.error("webhook_url", "must start with http:// or https://")
    s.reject_unknown()
    return AlertsConfig(webhook_url=url)


def read_credentials(s: Section, env: Mapping[str, str]) -> CredentialsConfig:
    name = s.string("master_key_env", "GATEWAY_MASTER_KEY")
    s.reject_unknown()
    return CredentialsConfig(master_key_env=name, master_key=env.get(name) or None)


def read_state(s: Section, env: Mapping[str, str]) -> StateConfig:
    password_env = s.string("password_env", "")
    config = StateConfig(
        backend=s.choice("backend", ("memory", "redis"), "memory") or "memory",
        url=s.string("url", "redis://127.0.0.1:6379/0"),
        password_env=password_env,
        password=env.get(password_env) or None if password_env else None,
        key_prefix=s.string("key_prefix", "llmg"),
        on_failure=s.choice("on_failure", ("closed", "local"), "closed") or "closed",
        timeout_ms=s.number("timeout_ms", 500.0, minimum=1),
    )
    _no_password_in_url(s, config.url)
    s.reject_unknown()
    return config


def read_responses(s: Section) -> ResponsesConfig:
    config = ResponsesConfig(
        retention_days=s.number("retention_days", 30.0, minimum=0.001),
        flush_interval_ms=s.number("flush_interval_ms", 50.0, minimum=1),
    )
    s.reject_unknown()
    return config


def read_cache(s: Section) -> CacheConfig:
    config = CacheConfig(
        enabled=s.boolean("enabled", False),
        deterministic_only=s.boolean("deterministic_only", True),
        max_entries=s.integer("max_entries", 10_000, minimum=1),
        max_bytes=s.integer("max_bytes", 100 * 1024 * 1024, minimum=1),
        ttl_s=s.number("ttl_s", 300, minimum=0.001),
        scope=s.choice("scope", CACHE_SCOPES, "user") or "user",
    )
    s.reject_unknown()
    return config


OTEL_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")
OTEL_MISSING = (
    "needs the OpenTelemetry packages, which are not installed: install the otel extra "
    "(pip install -r requirements-otel.lock, or pip install 'llm-gateway[otel]')"
)


def read_tracing(s: Section, env: Mapping[str, str]) -> TracingConfig:
    enabled = s.boolean("enabled", False)
    headers_env = s.string("headers_env", "")
    config = TracingConfig(
        enabled=enabled,
        endpoint=s.string("endpoint", "http://127.0.0.1:4318/v1/traces"),
        service_name=s.string("service_name", "llm-gateway"),
        sample_ratio=s.number("sample_ratio", 1.0, minimum=0, maximum=1),
        headers_env=headers_env,
        headers=_export_headers(s, headers_env, env) if enabled and headers_env else {},
    )
    if not config.endpoint.startswith(("http://", "https://")):
        s.error("endpoint", "must start with http:// or https:// (OTLP over HTTP)")
    if not config.service_name:
        s.error("service_name", "must not be empty")
    if enabled and not _otel_installed():
        s.error("enabled", OTEL_MISSING)
    s.reject_unknown()
    return config


def _export_headers(s: Section, name: str, env: Mapping[str, str]) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS' format, k=v,k2=v2 with values percent-encoded. The value
    is a secret (an auth token, say): errors say where it is, never what it holds."""
    raw = env.get(name)
    if not raw:
        # Exporting without the credentials the operator meant to send fails every batch.
        s.error("headers_env", f"names {name}, which is not set")
        return {}
    headers: dict[str, str] = {}
    for pair in raw.split(","):
        key, sep, value = pair.partition("=")
        key = unquote(key.strip())
        if not sep or not key:
            s.error("headers_env", f"{name} must hold key=value pairs separated by commas")
            return {}
        headers[key] = unquote(value.strip())
    return headers


def _otel_installed() -> bool:
    """Tried now, so a missing package stops check-config and start-up, not a request."""
    try:
        for module in OTEL_MODULES:
            importlib.import_module(module)
    except ImportError:
        return False
    return True
