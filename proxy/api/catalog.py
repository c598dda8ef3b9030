"""What the gateway offers: providers, models (aliases) and their prices."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from proxy.api.routing import Context, Endpoint, Param
from proxy.api.usage import percentile
from proxy.errors import NotFound
from proxy.pricing import Price, TokenCounts, usd
from proxy.router import Alias, Route

RECENT_S = 3600


async def list_providers(ctx: Context) -> dict[str, Any]:
    recent, routes = await _recent_health(ctx), await _route_health(ctx)
    names = sorted(ctx.runtime.config.providers)
    return {"object": "list", "data": [_provider(ctx, n, recent, routes) for n in names]}


async def get_provider(ctx: Context) -> dict[str, Any]:
    name = ctx.params["provider"]
    if name not in ctx.runtime.config.providers:
        raise NotFound(f"no provider named {name!r}", param="provider")
    return _provider(ctx, name, await _recent_health(ctx), await _route_health(ctx))


def _provider(
    ctx: Context,
    name: str,
    recent: dict[str, dict[str, Any]],
    routes: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    config = ctx.runtime.config.providers[name]
    breaker = ctx.runtime.breakers.get(name)
    return {
        "name": name,
        "type": config.type,
        "base_url": config.base_url or None,
        "enabled": config.enabled,
        "key_configured": bool(config.api_key),
        "circuit_state": None if breaker is None else breaker.state.name.lower(),
        "recent": recent.get(name, _NO_TRAFFIC),
        "recent_routes": routes.get(name, []),
    }


_NO_TRAFFIC = {
    "requests": 0,
    "error_rate": None,
    "avg_latency_ms": None,
    "p50_latency_ms": None,
    "p95_latency_ms": None,
}


def _health(requests: int, errors: int, counts: list[int]) -> dict[str, Any]:
    return {
        "requests": requests,
        "error_rate": round(errors / requests, 4) if requests else None,
        "p50_latency_ms": percentile(counts, 0.5),
        "p95_latency_ms": percentile(counts, 0.95),
    }


async def _route_health(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Per provider, each route model that answered in the last hour, with its health;
    a user's key sees only the routes of the aliases it may use."""
    rows = await ctx.services.usage.route_health(time.time() - RECENT_S)
    visible = None
    if not ctx.admin:
        visible = {
            (route.provider.name, route.model)
            for name, alias in ctx.runtime.router.aliases.items()
            if ctx.principal.may_use(name)
            for route in alias.routes
        }
    routes: dict[str, list[dict[str, Any]]] = {}
    for provider, model, requests, errors, *buckets in rows:
        if visible is not None and (provider, model) not in visible:
            continue
        health = _health(int(requests), int(errors or 0), [int(c or 0) for c in buckets])
        routes.setdefault(provider, []).append({"model": model, **health})
    return routes


async def _recent_health(ctx: Context) -> dict[str, dict[str, Any]]:
    rows = await ctx.services.usage.provider_health(time.time() - RECENT_S)
    health = {}
    for name, requests, errors, latency, *buckets in rows:
        health[name] = {
            **_health(requests, errors, [int(c or 0) for c in buckets]),
            "avg_latency_ms": round(latency / requests, 3) if requests else None,
        }
    return health


async def list_models(ctx: Context) -> dict[str, Any]:
    provider = ctx.params["provider"]
    aliases = [
        a
        for name, a in ctx.runtime.router.aliases.items()
        if ctx.principal.may_use(name)
        and (provider is None or any(r.provider.name == provider for r in a.routes))
    ]
    models = [_model(a) for a in aliases]
    if ctx.params["sort"] == "price":
        # By the price of the route tried first: what a request normally pays.
        models.sort(
            key=lambda m: (m["input_price"] is None, Decimal(m["input_price"] or 0), m["id"])
        )
    else:
        models.sort(key=lambda m: m["id"])
    return {"object": "list", "data": models}


async def get_model(ctx: Context) -> dict[str, Any]:
    name = ctx.params["alias"]
    alias = ctx.runtime.router.aliases.get(name)
    if alias is None or not ctx.principal.may_use(name):
        raise NotFound(f"no model {name!r}", param="alias", code="model_not_found")
    return _model(alias)


def _model(alias: Alias) -> dict[str, Any]:
    routes = [_route(r) for r in alias.routes]
    return {
        "id": alias.name,
        "object": "model",
        "strategy": alias.strategy,
        "input_price": routes[0]["input_price"] if routes else None,
        "output_price": routes[0]["output_price"] if routes else None,
        "routes": routes,
    }


def _route(route: Route) -> dict[str, Any]:
    price = route.price
    return {
        "provider": route.provider.name,
        "model": route.model,
        "weight": route.weight,
        **_prices(price),
    }


def _prices(price: Price | None) -> dict[str, str | None]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "input_price": text(price.input if price else None),
        "output_price": text(price.output if price else None),
        "cached_input_price": text(price.cached_input if price else None),
        "cache_write_price": text(price.cache_write if price else None),
    }


async def pricing_table(ctx: Context) -> dict[str, Any]:
    """What the configured routes cost, and the built-in table they are priced from (a
    route's own prices in gateway.toml win over it)."""
    provider = ctx.params["provider"]
    prices = ctx.runtime.prices
    builtin = [
        {"provider_type": kind, "model": model, **_prices(price), **_extras(price)}
        for (kind, model), price in sorted(prices.entries().items())
        if provider is None or kind == provider
    ]
    return {
        "unit": "USD per 1M tokens",
        "table_updated": prices.updated,
        "data": [
            {"alias": a.name, "routes": [_route(r) for r in a.routes]}
            for a in ctx.runtime.router.aliases.values()
        ],
        "builtin": builtin,
    }


def _extras(price: Price) -> dict[str, Any]:
    """What a built-in entry adds to the flat rates: 1-hour cache writes, long-context
    rates, service tiers."""
    extras: dict[str, Any] = {}
    if price.cache_write_1h is not None:
        extras["cache_write_1h_price"] = str(price.cache_write_1h)
    if price.long_context is not None:
        above, rates = price.long_context
        extras["long_context"] = {"above_prompt_tokens": above, **_prices(rates)}
    if price.tiers:
        extras["service_tiers"] = {tier: _prices(rates) for tier, rates in price.tiers.items()}
    return extras


def _cost(route: Route, prompt: int, completion: int) -> dict[str, Any]:
    where = {"provider": route.provider.name, "route_model": route.model}
    if route.price is None:
        return {**where, "cost_usd": None}
    nano = route.price.cost_nano(TokenCounts(prompt=prompt, completion=completion))
    return {**where, "cost_usd": usd(nano), "cost_nano_usd": nano}


async def calculator(ctx: Context) -> dict[str, Any]:
    name = ctx.params["model"]
    alias = ctx.runtime.router.aliases.get(name)
    if alias is None or not alias.routes:
        raise NotFound(f"no model {name!r}", param="model", code="model_not_found")
    prompt, completion = ctx.params["prompt_tokens"], ctx.params["completion_tokens"]
    routes = [_cost(r, prompt, completion) for r in alias.routes]
    return {
        "model": name,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        **routes[0],
        "routes": routes,
    }


async def compare(ctx: Context) -> dict[str, Any]:
    prompt, completion = ctx.params["prompt_tokens"], ctx.params["completion_tokens"]
    rows = [
        {"model": a.name, **_cost(a.routes[0], prompt, completion)}
        for a in ctx.runtime.router.aliases.values()
        if a.routes
    ]
    rows.sort(key=lambda r: (r["cost_usd"] is None, r.get("cost_nano_usd", 0), r["model"]))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "data": rows}


TOKENS = (
    Param("prompt_tokens", int, "prompt tokens", required=True, minimum=0),
    Param("completion_tokens", int, "completion tokens", required=True, minimum=0),
)
PROVIDER_EXAMPLE = {
    "name": "openai",
    "type": "openai",
    "base_url": "https://api.openai.com/v1",
    "enabled": True,
    "key_configured": True,
    "circuit_state": "closed",
    "recent": {
        "requests": 120,
        "error_rate": 0.0083,
        "avg_latency_ms": 812.4,
        "p50_latency_ms": 640.0,
        "p95_latency_ms": 2210.5,
    },
    "recent_routes": [
        {
            "model": "gpt-4o-mini",
            "requests": 120,
            "error_rate": 0.0083,
            "p50_latency_ms": 640.0,
            "p95_latency_ms": 2210.5,
        }
    ],
}
MODEL_EXAMPLE = {
    "id": "fast",
    "object": "model",
    "strategy": "ordered",
    "input_price": "0.15",
    "output_price": "0.60",
    "routes": [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "weight": 1.0,
            "input_price": "0.15",
            "output_price": "0.60",
            "cached_input_price": "0.075",
            "cache_write_price": None,
        }
    ],
}

ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/providers",
        "List providers with health",
        list_providers,
        example={"object": "list", "data": [PROVIDER_EXAMPLE]},
    ),
    Endpoint(
        "GET",
        "/api/providers/{provider}",
        "One provider",
        get_provider,
        params=(Param("provider", location="path", required=True),),
        example=PROVIDER_EXAMPLE,
    ),
    Endpoint(
        "GET",
        "/api/models",
        "Aliases with routes and prices",
        list_models,
        params=(
            Param("provider", description="only aliases routing to it"),
            Param("sort", choices=("name", "price"), default="name"),
        ),
        example={"object": "list", "data": [MODEL_EXAMPLE]},
    ),
    Endpoint(
        "GET",
        "/api/models/{alias}",
        "One alias",
        get_model,
        params=(Param("alias", location="path", required=True),),
        example=MODEL_EXAMPLE,
    ),
    Endpoint(
        "GET",
        "/api/pricing",
        "The configured routes' prices and the built-in price table",
        pricing_table,
        params=(Param("provider", description="built-in entries of this provider type only"),),
        example={
            "unit": "USD per 1M tokens",
            "table_updated": "2025-10-01",
            "data": [{"alias": "fast", "routes": MODEL_EXAMPLE["routes"]}],
            "builtin": [
                {
                    "provider_type": "openai",
                    "model": "gpt-4o-mini",
                    "input_price": "0.15",
                    "output_price": "0.6",
                    "cached_input_price": "0.075",
                    "cache_write_price": None,
                }
            ],
        },
    ),
    Endpoint(
        "GET",
        "/api/pricing/calculator",
        "Exact cost of a load on one alias",
        calculator,
        params=(Param("model", required=True), *TOKENS),
        example={
            "model": "fast",
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "provider": "openai",
            "cost_usd": "0.00045",
            "cost_nano_usd": 450000,
        },
    ),
    Endpoint(
        "GET",
        "/api/pricing/compare",
        "Every alias's cost for a load, cheapest first",
        compare,
        params=TOKENS,
        example={
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "data": [{"model": "fast", "provider": "openai", "cost_usd": "0.00045"}],
        },
    ),
]
