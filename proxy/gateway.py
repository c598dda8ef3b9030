"""The services a request needs, built once per config and swapped as a whole."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from proxy.auth import KeyStore, StaticKeyStore
from proxy.backoff import Backoff
from proxy.circuit import CircuitBreaker, CircuitState
from proxy.config import GatewayConfig
from proxy.failover import Failover
from proxy.providers import ADAPTERS, Provider, build_provider
from proxy.router import Router

log = structlog.get_logger("proxy.gateway")


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything derived from one gateway.toml. A request keeps the Runtime it started with."""

    config: GatewayConfig
    providers: Mapping[str, Provider]
    router: Router
    keys: KeyStore
    failover: Failover

    def ready(self) -> bool:
        return any(alias.routes for alias in self.router.aliases.values())


class Gateway:
    """Owns the current Runtime and the state that outlives a config reload."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None
        self.breakers: dict[str, CircuitBreaker] = {}
        self.shutting_down = False

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
            await asyncio.gather(*(p.transport.aclose() for p in self._runtime.providers.values()))

    def _build(self, config: GatewayConfig) -> Runtime:
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
            router=Router(config, providers, self.breakers),
            keys=StaticKeyStore(config.keys),
            failover=Failover(config.retry, Backoff(config.retry)),
        )

    def _breaker(self, name: str, config: GatewayConfig) -> CircuitBreaker:
        breaker = self.breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(config.circuit_breaker)
            breaker.on_change = lambda state, name=name: _circuit_changed(name, state)
            self.breakers[name] = breaker
        return breaker


def _circuit_changed(provider: str, state: CircuitState) -> None:
    log.warning("circuit_state_changed", provider=provider, state=state.name.lower())
