"""Aliases to routes, and the order a request tries them in (the alias's strategy)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from proxy.circuit import CircuitBreaker
from proxy.config import AliasConfig, GatewayConfig
from proxy.errors import NotFound
from proxy.price_table import PriceTable
from proxy.pricing import Price
from proxy.providers import Provider

# Weight of the newest sample in a route's moving average of latency.
EWMA_ALPHA = 0.3


@dataclass(slots=True, eq=False)
class Route:
    provider: Provider
    model: str
    weight: float
    breaker: CircuitBreaker
    price: Price | None = None
    max_output: int | None = None  # the model's own output-token limit, if known
    latency_s: float | None = None

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"

    def observe_latency(self, seconds: float) -> None:
        if self.latency_s is None:
            self.latency_s = seconds
        else:
            self.latency_s += EWMA_ALPHA * (seconds - self.latency_s)


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    strategy: str
    routes: tuple[Route, ...]


class Router:
    def __init__(
        self,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        breakers: Mapping[str, CircuitBreaker],
        prices: PriceTable,
        rng: random.Random | None = None,
    ) -> None:
        self._random = rng or random.Random()
        self._aliases = {
            name: _alias(alias, providers, breakers, prices)
            for name, alias in config.aliases.items()
        }

    @property
    def aliases(self) -> Mapping[str, Alias]:
        return self._aliases

    def alias(self, name: str) -> Alias:
        alias = self._aliases.get(name)
        if alias is None:
            raise model_not_found(name)
        return alias

    def plan(self, alias: Alias) -> list[Route]:
        """The alias's usable routes in the order to try them; circuits are checked later."""
        routes = list(alias.routes)
        if alias.strategy == "weighted" and len(routes) > 1:
            first = self._random.choices(routes, weights=[r.weight for r in routes])[0]
            routes.remove(first)
            routes.insert(0, first)
        elif alias.strategy == "least_latency":
            # Unmeasured routes go first, so every route gets a measurement.
            routes.sort(key=lambda r: -1.0 if r.latency_s is None else r.latency_s)
        return routes


def model_not_found(name: str) -> NotFound:
    return NotFound(
        f"The model {name!r} does not exist; GET /v1/models lists the available ones",
        param="model",
        code="model_not_found",
    )


def _alias(
    alias: AliasConfig,
    providers: Mapping[str, Provider],
    breakers: Mapping[str, CircuitBreaker],
    prices: PriceTable,
) -> Alias:
    routes = tuple(
        Route(
            providers[r.provider],
            r.model,
            r.weight,
            breakers[r.provider],
            prices.for_route(providers[r.provider].config.type, r.model, r.prices),
            prices.max_output(providers[r.provider].config.type, r.model),
        )
        for r in alias.routes
        if r.provider in providers
    )
    return Alias(alias.alias, alias.strategy, routes)
