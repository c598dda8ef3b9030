"""Exact request cost from a price: integer nano-dollars, never floats.

Prices are USD per 1M tokens, read as Decimals. One token at $P per 1M costs P * 1000
nano-dollars, an integer for any price given to 1/1000 of a dollar; finer prices round
half-even to the nano-dollar once per request. Sums of integers never drift.

A price may have rules beyond its flat rates, each as the provider bills it:
- `long_context`: above a prompt size, every token of the request at other rates
  (Gemini 2.5 Pro and 3 Pro above 200k prompt tokens; Claude Sonnet 4 and 4.5 above
  200k input tokens; OpenAI's gpt-5.4/5.5 above 272k);
- `tiers`: other rates for the service tier the provider says it served (OpenAI's
  `service_tier` flex and priority);
- cache writes: Anthropic bills 5-minute writes at 1.25x input and 1-hour writes
  (`ephemeral_1h_input_tokens`) at 2x; cached reads at the `cached_input` rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from proxy.config import PriceOverride
from proxy.frozen import frozen
from proxy.schema import Usage

NANO_PER_USD = 10**9
_PER_TOKEN = Decimal(NANO_PER_USD) / Decimal(10**6)
# No request bills a billion tokens; a larger (or negative, or non-integer) count is a bug
# at its source and must not reach the request log, whose integers are 64-bit. Adapters
# clamp upstream counts to it (`proxy.providers.base.count`), and so does pricing.
MAX_COUNT = 10**9


@frozen
class TokenCounts:
    prompt: int = 0
    completion: int = 0
    cached: int = 0  # prompt tokens read from the provider's cache (within `prompt`)
    cache_write: int = 0  # prompt tokens written to the provider's cache (within `prompt`)
    cache_write_1h: int = 0  # of those, written for an hour (Anthropic; within `cache_write`)
    service_tier: str | None = None  # the tier the provider served, as it reported it

    @classmethod
    def from_usage(cls, usage: Usage | None) -> TokenCounts:
        if not usage:
            return cls()
        details: Mapping[str, Any] = usage.get("prompt_tokens_details") or {}
        tier = usage.get("service_tier")
        return cls(
            prompt=_int(usage.get("prompt_tokens")),
            completion=_int(usage.get("completion_tokens")),
            cached=_int(details.get("cached_tokens")),
            cache_write=_int(details.get("cache_creation_tokens")),
            cache_write_1h=_int(details.get("cache_write_1h_tokens")),
            service_tier=tier if isinstance(tier, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens, and the rules that change them for a request."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    long_context: tuple[int, Price] | None = None  # (above this many prompt tokens, rates)
    tiers: Mapping[str, Price] = field(default_factory=dict)  # service tier -> rates
    # Nano-dollars per token (input, cached input, 5-minute write, 1-hour write, output)
    # when every rate is a whole number of them (given to 1/1000 of a dollar per 1M, as
    # every list price is): a request's cost is then a sum of integers, the same number
    # the Decimals give, at a fraction of their cost on every request.
    _per_token: tuple[int, int, int, int, int] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        write = self.input if self.cache_write is None else self.cache_write
        rates = (
            self.input,
            self.input if self.cached_input is None else self.cached_input,
            write,
            write if self.cache_write_1h is None else self.cache_write_1h,
            self.output,
        )
        per_token = [rate * _PER_TOKEN for rate in rates]
        whole = all(n.is_finite() and n == n.to_integral_value() for n in per_token)
        nano = (*(int(n) for n in per_token),) if whole else None
        object.__setattr__(self, "_per_token", nano)  # frozen: set once, here

    def rates(self, tokens: TokenCounts) -> Price:
        """The flat rates this request is billed at."""
        price = self.tiers.get(tokens.service_tier or "", self)
        if price.long_context is not None and tokens.prompt > price.long_context[0]:
            price = price.long_context[1]
        return price

    def cost_nano(self, tokens: TokenCounts) -> int:
        price = self.rates(tokens)
        cached = min(tokens.cached, tokens.prompt)
        written = min(tokens.cache_write, tokens.prompt - cached)
        written_1h = min(tokens.cache_write_1h, written)
        plain_input = tokens.prompt - cached - written
        nano = price._per_token
        if nano is not None:
            return (
                plain_input * nano[0]
                + cached * nano[1]
                + (written - written_1h) * nano[2]
                + written_1h * nano[3]
                + tokens.completion * nano[4]
            )
        write = price.input if price.cache_write is None else price.cache_write
        total = (
            plain_input * price.input
            + cached * (price.input if price.cached_input is None else price.cached_input)
            + (written - written_1h) * write
            + written_1h * (write if price.cache_write_1h is None else price.cache_write_1h)
            + tokens.completion * price.output
        ) * _PER_TOKEN
        return int(total.to_integral_value(ROUND_HALF_EVEN))

    def worst_cost_nano(self, prompt: int, completion: int, tier: str | None = None) -> int:
        """The most a request can cost with at most `prompt` input and `completion`
        output tokens, at the tier it asked for: every prompt token at the dearest input
        rate (a cache write costs more than plain input), and the long-context rates if
        `prompt` is over their threshold (a real prompt never exceeds its bound)."""
        rates = self.rates(TokenCounts(prompt=prompt, service_tier=tier))
        dearest = max(rates.input, rates.cache_write or rates.input, rates.cache_write_1h or 0)
        total = (prompt * dearest + completion * rates.output) * _PER_TOKEN
        return int(total.to_integral_value(ROUND_CEILING))

    def affordable_output(
        self, budget_nano: int, prompt: int, choices: int, tier: str | None = None
    ) -> int | None:
        """Output tokens per choice that `budget_nano` pays for after the prompt; None
        when output is free."""
        left = Decimal(budget_nano) - self.worst_cost_nano(prompt, 0, tier)
        rates = self.rates(TokenCounts(prompt=prompt, service_tier=tier))
        per_token = rates.output * _PER_TOKEN * choices
        if per_token <= 0:
            return None
        return max(0, int((left / per_token).to_integral_value(ROUND_FLOOR)))

    def with_override(self, override: PriceOverride) -> Price:
        """A route's own rates replace the table's flat ones; an overridden price drops
        the table's rules, which were the provider's list prices, not the route's."""
        if all(
            value is None
            for value in (
                override.input,
                override.output,
                override.cached_input,
                override.cache_write,
            )
        ):
            return self
        return replace(
            self,
            input=_pick(override.input, self.input),
            output=_pick(override.output, self.output),
            cached_input=_pick(override.cached_input, self.cached_input),
            cache_write=_pick(override.cache_write, self.cache_write),
            long_context=None,
            tiers={},
        )


def usd(nano: int) -> str:
    """Nano-dollars as an exact decimal string, e.g. 1234 -> '0.000001234'."""
    if not nano:
        return "0"
    dollars, fraction = divmod(abs(nano), NANO_PER_USD)
    sign = "-" if nano < 0 else ""
    return f"{sign}{dollars}.{fraction:09d}".rstrip("0").rstrip(".")


def _pick(override: Decimal | None, base: Decimal | None) -> Any:
    return base if override is None else override


def _int(value: Any) -> int:
    # Adapters clamp upstream counts already; this keeps any other source in range too.
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return int(min(max(value, 0), MAX_COUNT))
