"""The validated configuration: frozen values built once from gateway.toml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

# Published on purpose: it only works while the server listens on a loopback address.
DEV_KEY = "llmg_dev_only_insecure_local_key"

STRATEGIES = ("ordered", "weighted", "least_latency")


@dataclass(frozen=True, slots=True)
class ProviderType:
    default_base_url: str | None
    default_key_env: str | None
    key_required: bool
    default_api_version: str | None = None


PROVIDER_TYPES: dict[str, ProviderType] = {
    "openai": ProviderType("https://api.openai.com/v1", "OPENAI_API_KEY", True),
    "openai_compatible": ProviderType(None, None, False),
    "deepseek": ProviderType("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", True),
    "mistral": ProviderType("https://api.mistral.ai/v1", "MISTRAL_API_KEY", True),
    "anthropic": ProviderType(
        "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY", True, "2023-06-01"
    ),
    "gemini": ProviderType(
        "https://generativelanguage.googleapis.com/v1beta", "GEMINI_API_KEY", True
    ),
    "mock": ProviderType(None, None, False),
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_request_body_bytes: int = 8 * 1024 * 1024
    shutdown_grace_s: float = 30.0
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 5.0
    max_connections: int = 4096
    docs: bool = True
    dashboard: bool = True  # GET /dashboard; the loader's default: on when host is loopback


@dataclass(frozen=True, slots=True)
class StaticKey:
    name: str
    sha256: str
    dev_only: bool = False
    debug_log: bool = False
    admin: bool = False
    # Kept only so upstream text echoing it can be scrubbed; never logged or compared.
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    enabled: bool = True
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 30.0
    idle_timeout_s: float = 30.0
    total_timeout_s: float = 600.0
    keepalive_timeout_s: float = 30.0
    max_response_bytes: int = 128 * 1024 * 1024
    max_event_bytes: int = 16 * 1024 * 1024
    default_max_tokens: int = 4096
    image_tokens: int | None = None  # the most one image can bill; None: the provider's rule
    latency_ms: float = 0.0
    api_version: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """USD per 1M tokens set on a route in gateway.toml; None keeps the built-in price."""

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RouteConfig:
    provider: str
    model: str
    weight: float = 1.0
    prices: PriceOverride = field(default_factory=PriceOverride)


@dataclass(frozen=True, slots=True)
class AliasConfig:
    alias: str
    strategy: str
    routes: tuple[RouteConfig, ...]


@dataclass(frozen=True, slots=True)
class RetryConfig:
    attempts_per_route: int = 1
    initial_backoff_ms: float = 100.0
    multiplier: float = 2.0
    max_backoff_ms: float = 2000.0
    deadline_s: float = 120.0


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    failure_threshold: int = 5
    cooldown_s: float = 30.0


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where the request log, accounts, audit log and stored responses live."""

    backend: str = "sqlite"  # sqlite | postgresql
    database: str = "gateway.db"  # the SQLite file
    url: str = ""  # postgresql://user@host:port/dbname, without the password
    password_env: str = ""  # the environment variable holding PostgreSQL's password, if any
    password: str | None = field(default=None, repr=False)
    pool_size: int = 10  # connections per process for the management side
    batch_size: int = 200
    flush_interval_ms: float = 500.0
    queue_limit: int = 100_000
    retention_days: float = 90.0


@dataclass(frozen=True, slots=True)
class DebugLogConfig:
    enabled: bool = False
    max_body_bytes: int = 65536


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    format: str = "console"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    port: int = 0
    per_key_labels: bool = False
    host: str = ""  # the separate listener's address; "" means server.host
    bearer_token_env: str = ""
    bearer_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    default_reserve_usd: Decimal = Decimal("0.05")
    alert_thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)
    usage_drain_s: float = 5.0


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    webhook_url: str = ""


@dataclass(frozen=True, slots=True)
class CredentialsConfig:
    master_key_env: str = "GATEWAY_MASTER_KEY"
    master_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    # Off unless configured: a drop-in client asking twice at temperature 1 wants two
    # samples, not the same one twice.
    enabled: bool = False
    # Cache only requests whose answer is meant to repeat (temperature 0, or a seed).
    deterministic_only: bool = True
    max_entries: int = 10_000
    max_bytes: int = 100 * 1024 * 1024
    ttl_s: float = 300.0
    scope: str = "user"


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Where rate limits, budget holds, the cache and alert facts live."""

    backend: str = "memory"  # memory | redis
    url: str = "redis://127.0.0.1:6379/0"
    password_env: str = ""  # the environment variable holding Redis's password, if any
    password: str | None = field(default=None, repr=False)
    key_prefix: str = "llmg"
    on_failure: str = "closed"  # closed: 503 | local: per-process state while Redis is down
    timeout_ms: float = 500.0  # one Redis call's socket timeout


@dataclass(frozen=True, slots=True)
class ResponsesConfig:
    """Stored Responses API answers (`store`, `previous_response_id`)."""

    retention_days: float = 30.0  # OpenAI keeps stored responses 30 days
    flush_interval_ms: float = 50.0


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """OpenTelemetry traces, exported over OTLP/HTTP; off unless enabled."""

    enabled: bool = False
    endpoint: str = "http://127.0.0.1:4318/v1/traces"  # the collector's OTLP/HTTP traces URL
    service_name: str = "llm-gateway"
    sample_ratio: float = 1.0  # of traces started here; a client's traceparent decides for its own
    headers_env: str = ""  # the environment variable holding extra export headers, k=v,k2=v2
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    path: str
    server: ServerConfig
    keys: tuple[StaticKey, ...]
    providers: Mapping[str, ProviderConfig]
    aliases: Mapping[str, AliasConfig]
    retry: RetryConfig
    circuit_breaker: CircuitBreakerConfig
    storage: StorageConfig = field(default_factory=StorageConfig)
    debug_log: DebugLogConfig = field(default_factory=DebugLogConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    credentials: CredentialsConfig = field(default_factory=CredentialsConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    responses: ResponsesConfig = field(default_factory=ResponsesConfig)
    state: StateConfig = field(default_factory=StateConfig)
    tracing: TracingConfig = field(default_factory=TracingConfig)
    warnings: tuple[str, ...] = ()

    def usable_routes(self, alias: AliasConfig) -> tuple[RouteConfig, ...]:
        return tuple(r for r in alias.routes if self.providers[r.provider].enabled)


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
