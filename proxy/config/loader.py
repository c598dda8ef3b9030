"""gateway.toml: read, validate every key, and resolve secrets from the environment.

Validation collects every problem (file, key, what is wrong) instead of stopping at the
first, so `check-config` and `serve` can print them all at once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from proxy.config.sections import (
    read_alerts,
    read_budgets,
    read_cache,
    read_credentials,
    read_debug_log,
    read_logging,
    read_metrics,
    read_price_override,
    read_responses,
    read_state,
    read_storage,
    read_tracing,
)
from proxy.config.toml import Problems, Section
from proxy.config.types import (
    DEV_KEY,
    PROVIDER_TYPES,
    STRATEGIES,
    AliasConfig,
    CircuitBreakerConfig,
    ConfigError,
    GatewayConfig,
    ProviderConfig,
    RetryConfig,
    RouteConfig,
    ServerConfig,
    StaticKey,
)


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> GatewayConfig:
    """Read and validate a gateway.toml; raise ConfigError listing every problem.

    `host` and `port` override `[server]` (command-line flags) before validation, so
    checks that depend on the listen address see the real one.
    """
    env = os.environ if env is None else env
    where = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{where}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{where}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML: {exc}"]) from None
    problems = Problems(where)
    config = _build(Section(data, "", problems), where, env, host, port)
    if problems.errors:
        raise ConfigError(problems.errors)
    return config


def _build(
    root: Section, where: str, env: Mapping[str, str], host: str | None, port: int | None
) -> GatewayConfig:
    server = _server(root.section("server"))
    server = replace(
        server,
        host=server.host if host is None else host,
        port=server.port if port is None else port,
    )
    providers = _providers(root.section("providers"), env)
    aliases = _aliases(root.tables("models"), providers)
    keys = _keys(root.tables("keys"), env, server)
    retry = _retry(root.section("retry"))
    breaker = _breaker(root.section("circuit_breaker"))
    storage = read_storage(root.section("storage"), env)
    debug_log = read_debug_log(root.section("debug_log"))
    logging = read_logging(root.section("logging"))
    metrics = read_metrics(root.section("metrics"), env)
    budgets = read_budgets(root.section("budgets"))
    alerts = read_alerts(root.section("alerts"))
    credentials = read_credentials(root.section("credentials"), env)
    cache = read_cache(root.section("cache"))
    responses = read_responses(root.section("responses"))
    state = read_state(root.section("state"), env)
    tracing = read_tracing(root.section("tracing"), env)
    root.reject_unknown()
    warnings = list(root.problems.warnings)
    real = sorted(p.name for p in providers.values() if p.enabled and p.type != "mock")
    if any(key.dev_only for key in keys) and real:
        warnings.append(
            f"{where}: DANGER: the published dev-only key is enabled and provider(s) "
            f"{', '.join(real)} spend real money: anyone who can reach this port can use "
            "them. Remove the dev_only key (deploy/gateway.toml has none)."
        )
    for alias in aliases.values():
        usable = (providers.get(r.provider) for r in alias.routes)
        if alias.routes and not any(p is not None and p.enabled for p in usable):
            warnings.append(f"{where}: models.{alias.alias}: every route's provider is disabled")
    return GatewayConfig(
        path=where,
        server=server,
        keys=keys,
        providers=providers,
        aliases=aliases,
        retry=retry,
        circuit_breaker=breaker,
        storage=storage,
        debug_log=debug_log,
        logging=logging,
        metrics=metrics,
        budgets=budgets,
        alerts=alerts,
        credentials=credentials,
        cache=cache,
        responses=responses,
        state=state,
        tracing=tracing,
        warnings=tuple(warnings),
    )


def _server(s: Section) -> ServerConfig:
    host = s.string("host", "127.0.0.1")
    config = ServerConfig(
        host=host,
        port=s.integer("port", 8080, minimum=0, maximum=65535),
        max_request_body_bytes=int(s.number("max_request_body_mb", 8, minimum=0.001) * 1024 * 1024),
        shutdown_grace_s=s.number("shutdown_grace_s", 30, minimum=0),
        max_header_bytes=int(s.number("max_header_kb", 64, minimum=1) * 1024),
        header_timeout_s=s.number("header_timeout_s", 10, minimum=0.1),
        body_timeout_s=s.number("body_timeout_s", 30, minimum=0.1),
        keepalive_timeout_s=s.number("keepalive_timeout_s", 5, minimum=0.1),
        max_connections=s.integer("max_connections", 4096, minimum=1),
        docs=s.boolean("docs", True),
        # On by default where only this machine can reach it; say so to serve it wider.
        dashboard=s.boolean("dashboard", _is_loopback(host)),
    )
    s.reject_unknown()
    return config


def _providers(s: Section, env: Mapping[str, str]) -> dict[str, ProviderConfig]:
    providers: dict[str, ProviderConfig] = {}
    for name in s.names():
        p = s.section(name)
        kind = p.choice("type", tuple(PROVIDER_TYPES), None)
        if kind is None:
            continue
        ptype = PROVIDER_TYPES[kind]
        base_url = p.string("base_url", ptype.default_base_url or "")
        if kind != "mock" and not base_url:
            p.error("base_url", "is required for this provider type")
        elif base_url and not base_url.startswith(("http://", "https://")):
            p.error("base_url", "must start with http:// or https://")
        key_env = p.string("api_key_env", ptype.default_key_env or "") or None
        api_key = env.get(key_env) if key_env else None
        enabled = p.boolean("enabled", True)
        if enabled and ptype.key_required and not api_key:
            p.warn(f"disabled: environment variable {key_env} is not set")
            enabled = False
        providers[name] = ProviderConfig(
            name=name,
            type=kind,
            base_url=base_url.rstrip("/"),
            api_key=api_key,
            api_key_env=key_env,
            enabled=enabled,
            connect_timeout_s=p.number("connect_timeout_s", 5, minimum=0.001),
            first_byte_timeout_s=p.number("first_byte_timeout_s", 30, minimum=0.001),
            idle_timeout_s=p.number("idle_timeout_s", 30, minimum=0.001),
            total_timeout_s=p.number("total_timeout_s", 600, minimum=0.001),
            keepalive_timeout_s=p.number("keepalive_timeout_s", 30, minimum=0.001),
            max_response_bytes=int(p.number("max_response_mb", 128, minimum=0.01) * 2**20),
            max_event_bytes=int(p.number("max_event_mb", 16, minimum=0.01) * 2**20),
            default_max_tokens=p.integer("default_max_tokens", 4096, minimum=1),
            image_tokens=p.integer("image_tokens", 0, minimum=1)
            if "image_tokens" in p.data
            else None,
            latency_ms=p.number("latency_ms", 0, minimum=0),
            api_version=p.string("api_version", ptype.default_api_version or "") or None,
            headers=p.string_table("headers"),
        )
        p.reject_unknown()
    return providers


def _aliases(
    tables: list[Section], providers: Mapping[str, ProviderConfig]
) -> dict[str, AliasConfig]:
    aliases: dict[str, AliasConfig] = {}
    for m in tables:
        alias = m.string("alias", "")
        if not alias:
            m.error("alias", "is required")
        elif alias in aliases:
            m.error("alias", f"{alias!r} is defined twice")
        strategy = m.choice("strategy", STRATEGIES, "ordered") or "ordered"
        routes = []
        for r in m.tables("routes"):
            provider = r.string("provider", "")
            if provider not in providers:
                r.error("provider", f"{provider!r} is not a configured provider")
            model = r.string("model", "")
            if not model:
                r.error("model", "is required")
            weight = r.number("weight", 1, minimum=0)
            prices = read_price_override(r)
            r.reject_unknown()
            routes.append(RouteConfig(provider, model, weight, prices))
        if not routes:
            m.error("routes", "needs at least one route")
        if strategy == "weighted" and routes and not any(r.weight > 0 for r in routes):
            m.error("routes", "a weighted alias needs at least one route with weight > 0")
        m.reject_unknown()
        if alias:
            aliases[alias] = AliasConfig(alias=alias, strategy=strategy, routes=tuple(routes))
    return aliases


def _keys(
    tables: list[Section], env: Mapping[str, str], server: ServerConfig
) -> tuple[StaticKey, ...]:
    keys: list[StaticKey] = []
    for k in tables:
        name = k.string("name", "")
        if not name:
            k.error("name", "is required")
        dev_only = k.boolean("dev_only", False)
        secret: str | None = None
        debug = k.boolean("debug_log", False)
        admin = k.boolean("admin", False)
        key_env = k.string("key_env", "")
        digest = k.string("key_sha256", "").lower()
        k.reject_unknown()
        if sum(map(bool, (dev_only, key_env, digest))) != 1:
            k.error("", "set exactly one of key_env, key_sha256 or dev_only = true")
            continue
        if dev_only:
            if not _is_loopback(server.host):
                k.warn(f"dev-only key {name!r} disabled: server.host is not a loopback address")
                continue
            k.warn(f"dev-only key {name!r} is enabled: remove it before exposing the gateway")
            digest = hashlib.sha256(DEV_KEY.encode()).hexdigest()
        elif key_env:
            secret = env.get(key_env)
            if not secret:
                k.warn(f"key {name!r} disabled: environment variable {key_env} is not set")
                continue
            digest = hashlib.sha256(secret.encode()).hexdigest()
        elif len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            k.error("key_sha256", "must be 64 hex characters (the sha256 of the key)")
            continue
        keys.append(
            StaticKey(name, digest, dev_only=dev_only, debug_log=debug, admin=admin, secret=secret)
        )
    return tuple(keys)


def _retry(s: Section) -> RetryConfig:
    config = RetryConfig(
        attempts_per_route=s.integer("attempts_per_route", 1, minimum=0, maximum=10),
        initial_backoff_ms=s.number("initial_backoff_ms", 100, minimum=0),
        multiplier=s.number("multiplier", 2.0, minimum=1),
        max_backoff_ms=s.number("max_backoff_ms", 2000, minimum=0),
        deadline_s=s.number("deadline_s", 120, minimum=0.001),
    )
    s.reject_unknown()
    return config


def _breaker(s: Section) -> CircuitBreakerConfig:
    config = CircuitBreakerConfig(
        failure_threshold=s.integer("failure_threshold", 5, minimum=1),
        cooldown_s=s.number("cooldown_s", 30, minimum=0),
    )
    s.reject_unknown()
    return config


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
