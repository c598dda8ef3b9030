"""The services a request needs, built once per config and swapped as a whole."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from proxy.accounts import audit
from proxy.auth import ChainedKeyStore, KeyStore, StaticKeyStore
from proxy.backoff import Backoff
from proxy.circuit import CircuitBreaker, CircuitState
from proxy.config import ConfigError, GatewayConfig, load_config
from proxy.failover import Failover
from proxy.metrics import Metrics
from proxy.price_table import PriceTable
from proxy.providers import ADAPTERS, Provider, build_provider
from proxy.router import Router
from proxy.scrubber import Scrubber
from proxy.services import Services

log = structlog.get_logger("proxy.gateway")
# How long a replaced Runtime waits for its last requests before closing its connections.
RETIRE_AFTER_S = 900.0


@dataclass(slots=True, eq=False)
class Runtime:
    """Everything derived from one gateway.toml. A request keeps the Runtime it started with."""

    config: GatewayConfig
    providers: Mapping[str, Provider]
    router: Router
    keys: KeyStore
    failover: Failover
    breakers: Mapping[str, CircuitBreaker] = field(default_factory=dict)
    scrubber: Scrubber = field(default_factory=Scrubber)
    prices: PriceTable = field(default_factory=PriceTable.builtin)
    active: int = 0  # requests still using this runtime

    async def aclose(self) -> None:
        await asyncio.gather(*(p.transport.aclose() for p in self.providers.values()))

    def ready(self) -> bool:
        return any(alias.routes for alias in self.router.aliases.values())


class Gateway:
    """Owns the current Runtime and the state that outlives a config reload."""

    def __init__(self, metrics: Metrics, prices: PriceTable | None = None) -> None:
        self.metrics = metrics
        self.prices = prices or PriceTable.builtin()
        self._runtime: Runtime | None = None
        self.breakers: dict[str, CircuitBreaker] = {}
        self.shutting_down = False
        self.services: Services | None = None
        # Outlives reloads: users' own keys are added to it by the services.
        self.scrubber = Scrubber()
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the gateway has not started")
        return self._runtime

    @property
    def started(self) -> bool:
        return self._runtime is not None

    def start(self, config: GatewayConfig) -> None:
        """Must run inside the event loop (HTTP sessions are opened here)."""
        self._runtime = self._build(config)

    async def aclose(self) -> None:
        if self._runtime is not None:
            await self._runtime.aclose()
        await asyncio.gather(*self._retiring, return_exceptions=True)

    def reload(self, path: str | None = None, actor: str = "SIGHUP") -> list[str]:
        """Re-read the config and swap it in atomically; return the problems, if any.

        An invalid file keeps the running config. Requests in flight finish on the old
        Runtime, whose connections close once the last of them is done.
        """
        old = self.runtime
        try:
            config = load_config(
                path or old.config.path, host=old.config.server.host, port=old.config.server.port
            )
        except ConfigError as error:
            self.metrics.reloads.labels("error").inc()
            for problem in error.problems:
                log.error("config_reload_rejected", problem=problem)
            self._audit(actor, "config.reload_rejected", {"problems": error.problems})
            return error.problems
        for breaker in self.breakers.values():
            breaker.configure(config.circuit_breaker)
        self._runtime = self._build(config)
        task = asyncio.get_running_loop().create_task(_retire(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        self.metrics.reloads.labels("ok").inc()
        log.info("config_reloaded", config=config.path, aliases=sorted(config.aliases))
        self._audit(actor, "config.reloaded", {"aliases": sorted(config.aliases)})
        return []

    def _audit(self, actor: str, action: str, detail: dict[str, object]) -> None:
        if self.services is None:
            return
        database, path = self.services.db, self.runtime.config.path

        async def write() -> None:
            async with database.transaction() as db:
                await audit.record(db, actor, action, subject=path, detail=detail)

        task = asyncio.get_running_loop().create_task(write())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _build(self, config: GatewayConfig) -> Runtime:
        self.scrubber.set_source("config", config_secrets(config))
        providers: dict[str, Provider] = {}
        for name, provider_config in config.providers.items():
            if not provider_config.enabled:
                continue
            if provider_config.type not in ADAPTERS:
                log.warning("provider_type_not_available", provider=name, type=provider_config.type)
                continue
            providers[name] = build_provider(provider_config)
            self._breaker(name, config)
        return Runtime(
            config=config,
            providers=providers,
            router=Router(config, providers, self.breakers, self.prices),
            keys=self._keys(config),
            failover=Failover(config.retry, Backoff(config.retry), self.scrubber.scrub),
            breakers=self.breakers,
            scrubber=self.scrubber,
            prices=self.prices,
        )

    def _keys(self, config: GatewayConfig) -> KeyStore:
        static = StaticKeyStore(config.keys)
        if self.services is None:
            return static
        return ChainedKeyStore(static, self.services.keys)

    def _breaker(self, name: str, config: GatewayConfig) -> CircuitBreaker:
        breaker = self.breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(config.circuit_breaker)
            gauge = self.metrics.circuit.labels(name)
            gauge.set(0)

            def changed(state: CircuitState, name: str = name) -> None:
                gauge.set(int(state))
                log.warning("circuit_state_changed", provider=name, state=state.name.lower())

            breaker.on_change = changed
            self.breakers[name] = breaker
        return breaker


def config_secrets(config: GatewayConfig) -> list[str | None]:
    """Every secret gateway.toml resolved: provider keys, the master key, static keys, the
    passwords of Redis and PostgreSQL, and the trace exporter's headers."""
    return [
        *(provider.api_key for provider in config.providers.values()),
        config.credentials.master_key,
        *(key.secret for key in config.keys),
        config.state.password,
        config.storage.password,
        *config.tracing.headers.values(),
    ]


async def _retire(runtime: Runtime) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + RETIRE_AFTER_S
    while runtime.active > 0 and loop.time() < give_up:  # noqa: ASYNC110 (a counter, polled)
        await asyncio.sleep(0.5)
    await runtime.aclose()
