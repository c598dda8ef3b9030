"""The price table: what each provider's models cost and how much they may write.

The built-in table is `proxy/data/prices.toml`; `llm-gateway prices check FILE` compares
it with another file of the same shape (nothing is fetched at run time), and routes may
override a price in gateway.toml. Model ids are looked up exactly: a dated snapshot or a
`-latest` alias has an entry of its own (or `same_as` another entry), else it is
unknown. Guessing from a similar name priced gpt-4o-2024-05-13 ($5/$15) as gpt-4o.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

from proxy.config import GatewayConfig, PriceOverride
from proxy.pricing import Price

RATE_FIELDS = ("input", "output", "cached_input", "cache_write", "cache_write_1h")
TIERS = ("flex", "priority")


class PriceTable:
    def __init__(
        self,
        entries: Mapping[tuple[str, str], Price],
        updated: str,
        max_outputs: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self._entries = dict(entries)
        self._max_outputs = dict(max_outputs or {})
        self.updated = updated

    @classmethod
    def builtin(cls) -> PriceTable:
        return _builtin_table()

    @classmethod
    def parse(cls, text: str) -> PriceTable:
        # parse_float=Decimal keeps 0.075 exactly 0.075.
        data = tomllib.loads(text, parse_float=Decimal)
        raw = {
            (provider_type, model): values
            for provider_type, table in data.items()
            if isinstance(table, dict)
            for model, values in table.items()
            if isinstance(values, dict)
        }
        resolved = {key: _resolve(raw, key) for key in raw}
        entries = {key: _price(values) for key, values in resolved.items()}
        limits = {
            key: int(values["max_output"])
            for key, values in resolved.items()
            if "max_output" in values
        }
        return cls(entries, str(data.get("updated", "unknown")), limits)

    def lookup(self, provider_type: str, model: str) -> Price | None:
        return self._entries.get((provider_type, model))

    def max_output(self, provider_type: str, model: str) -> int | None:
        """The model's own limit on output tokens, when the table knows it."""
        return self._max_outputs.get((provider_type, model))

    def for_route(self, provider_type: str, model: str, override: PriceOverride) -> Price | None:
        """The route's effective price; None when neither the table nor the route sets one."""
        base = self.lookup(provider_type, model)
        if base is None:
            if override.input is None or override.output is None:
                return None
            base = Price(override.input, override.output)
        return base.with_override(override)

    def entries(self) -> Mapping[tuple[str, str], Price]:
        return self._entries

    def differences(self, other: PriceTable) -> list[str]:
        """What `other` says that this table does not: added, removed and changed models."""
        lines = []
        for key in sorted(set(self._entries) | set(other._entries)):
            mine, theirs = self._entries.get(key), other._entries.get(key)
            name = "/".join(key)
            if mine == theirs:
                continue
            if mine is None:
                lines.append(f"+ {name}: {describe(theirs)} (not in the built-in table)")
            elif theirs is None:
                lines.append(f"- {name}: {describe(mine)} (not in the other file)")
            else:
                lines.append(f"~ {name}: {describe(mine)}  ->  {describe(theirs)}")
        return lines


def describe(price: Price | None) -> str:
    if price is None:
        return "unknown"
    parts = [
        f"{name} {getattr(price, name)}" for name in RATE_FIELDS if getattr(price, name) is not None
    ]
    if price.long_context is not None:
        parts.append(f"above {price.long_context[0]}: [{describe(price.long_context[1])}]")
    parts += [f"{tier}: [{describe(rates)}]" for tier, rates in sorted(price.tiers.items())]
    return ", ".join(parts)


def unpriced_routes(config: GatewayConfig, table: PriceTable | None = None) -> list[str]:
    """Warnings for routes whose cost would be logged as unknown."""
    table = table or PriceTable.builtin()
    return [
        f"{config.path}: models.{alias.alias}: route {route.provider}/{route.model} has no "
        "known price; set input_price and output_price on the route"
        for alias in config.aliases.values()
        for route in alias.routes
        if table.for_route(config.providers[route.provider].type, route.model, route.prices) is None
    ]


@functools.cache
def _builtin_table() -> PriceTable:
    # Read once per process: adapters and reloads ask for it again and again.
    text = resources.files("proxy").joinpath("data/prices.toml").read_text("utf-8")
    return PriceTable.parse(text)


def _resolve(raw: Mapping[tuple[str, str], Any], key: tuple[str, str]) -> Mapping[str, Any]:
    """An entry's values, following `same_as` (an alias or a dated snapshot said to cost
    exactly what another entry costs)."""
    values: Mapping[str, Any] = raw[key]
    seen = {key}
    while "same_as" in values:
        target = (key[0], str(values["same_as"]))
        if target in seen or target not in raw:
            raise ValueError(f"prices: {'/'.join(key)} same_as {target[1]!r}: no such entry")
        seen.add(target)
        values = {**raw[target], **{k: v for k, v in values.items() if k != "same_as"}}
    return values


def _price(values: Mapping[str, Any]) -> Price:
    long_context = values.get("long_context")
    return Price(
        input=Decimal(values["input"]),
        output=Decimal(values["output"]),
        cached_input=_optional(values.get("cached_input")),
        cache_write=_optional(values.get("cache_write")),
        cache_write_1h=_optional(values.get("cache_write_1h")),
        long_context=(int(long_context["above"]), _price(long_context)) if long_context else None,
        tiers={tier: _price(values[tier]) for tier in TIERS if isinstance(values.get(tier), dict)},
    )


def _optional(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)
