"""Exact request cost from a price table: integer nano-dollars, never floats.

Prices are USD per 1M tokens, read as Decimals. One token at $P per 1M costs P * 1000
nano-dollars, an integer for any price given to 1/1000 of a dollar; finer prices round
half-even to the nano-dollar once per request. Sums of integers never drift.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from importlib import resources
from typing import Any, TypeVar

from proxy.config import GatewayConfig, PriceOverride
from proxy.schema import Usage

_D = TypeVar("_D", Decimal, Decimal | None)
NANO_PER_USD = 10**9
_PER_TOKEN = Decimal(NANO_PER_USD) / Decimal(10**6)
# Dated or -latest model ids fall back to the undated entry.
_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-\d{3,4})$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None

    def cost_nano(self, tokens: TokenCounts) -> int:
        cached = min(tokens.cached, tokens.prompt)
        written = min(tokens.cache_write, tokens.prompt - cached)
        total = (
            (tokens.prompt - cached - written) * self.input
            + cached * (self.input if self.cached_input is None else self.cached_input)
            + written * (self.input if self.cache_write is None else self.cache_write)
            + tokens.completion * self.output
        ) * _PER_TOKEN
        return int(total.to_integral_value(ROUND_HALF_EVEN))

    def worst_cost_nano(self, prompt: int, completion: int) -> int:
        """The most `prompt` input and `completion` output tokens can cost: every prompt
        token at the dearest input rate (a cache write costs more than plain input)."""
        dearest = max(self.input, self.cache_write or self.input)
        total = (prompt * dearest + completion * self.output) * _PER_TOKEN
        return int(total.to_integral_value(ROUND_CEILING))

    def affordable_output(self, budget_nano: int, prompt: int, choices: int) -> int | None:
        """Output tokens per choice that `budget_nano` pays for after the prompt; None
        when output is free."""
        left = Decimal(budget_nano) - self.worst_cost_nano(prompt, 0)
        per_token = self.output * _PER_TOKEN * choices
        if per_token <= 0:
            return None
        return max(0, int((left / per_token).to_integral_value(ROUND_FLOOR)))

    def with_override(self, override: PriceOverride) -> Price:
        return Price(
            input=_pick(override.input, self.input),
            output=_pick(override.output, self.output),
            cached_input=_pick(override.cached_input, self.cached_input),
            cache_write=_pick(override.cache_write, self.cache_write),
        )


@dataclass(frozen=True, slots=True)
class TokenCounts:
    prompt: int = 0
    completion: int = 0
    cached: int = 0  # prompt tokens read from the provider's cache (within `prompt`)
    cache_write: int = 0  # prompt tokens written to the provider's cache (within `prompt`)

    @classmethod
    def from_usage(cls, usage: Usage | None) -> TokenCounts:
        if not usage:
            return cls()
        details: Mapping[str, Any] = usage.get("prompt_tokens_details") or {}
        return cls(
            prompt=_int(usage.get("prompt_tokens")),
            completion=_int(usage.get("completion_tokens")),
            cached=_int(details.get("cached_tokens")),
            cache_write=_int(details.get("cache_creation_tokens")),
        )


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
        models = [
            ((provider_type, model), values)
            for provider_type, table in data.items()
            if isinstance(table, dict)
            for model, values in table.items()
        ]
        entries = {key: _price(values) for key, values in models}
        limits = {
            key: int(values["max_output"]) for key, values in models if "max_output" in values
        }
        return cls(entries, str(data.get("updated", "unknown")), limits)

    def lookup(self, provider_type: str, model: str) -> Price | None:
        return _find(self._entries, provider_type, model)

    def max_output(self, provider_type: str, model: str) -> int | None:
        """The model's own limit on output tokens, when the table knows it."""
        return _find(self._max_outputs, provider_type, model)

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


_V = TypeVar("_V")


def _find(table: Mapping[tuple[str, str], _V], provider_type: str, model: str) -> _V | None:
    found = table.get((provider_type, model))
    if found is None:
        undated = _SUFFIX.sub("", model)
        if undated != model:
            found = table.get((provider_type, undated))
    return found


def usd(nano: int) -> str:
    """Nano-dollars as an exact decimal string, e.g. 1234 -> '0.000001234'."""
    return format(Decimal(nano).scaleb(-9).normalize(), "f") if nano else "0"


def _price(values: Mapping[str, Any]) -> Price:
    return Price(
        input=Decimal(values["input"]),
        output=Decimal(values["output"]),
        cached_input=_optional(values.get("cached_input")),
        cache_write=_optional(values.get("cache_write")),
    )


def _optional(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _pick(override: Decimal | None, base: _D) -> Decimal | _D:
    return base if override is None else override


def _int(value: Any) -> int:
    # Adapters clamp upstream counts already; this keeps any other source in range too.
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return int(min(max(value, 0), 10**9))
