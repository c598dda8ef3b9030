"""Exact costs: integer nano-dollars from Decimal prices, with cached tokens and overrides."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from proxy.config import PriceOverride, load_config
from proxy.pricing import Price, PriceTable, TokenCounts, unpriced_routes, usd

TABLE = PriceTable.builtin()


def test_builtin_table_is_dated_and_finds_dated_model_ids() -> None:
    assert TABLE.updated.count("-") == 2
    assert TABLE.lookup("openai", "gpt-4o-mini-2024-07-18") == TABLE.lookup("openai", "gpt-4o-mini")
    assert TABLE.lookup("anthropic", "claude-3-5-haiku-20241022") is not None
    assert TABLE.lookup("openai", "no-such-model") is None


def test_cost_with_cached_prompt_tokens_by_hand() -> None:
    price = TABLE.lookup("openai", "gpt-4o-mini")
    assert price is not None
    # 800 uncached x $0.15 + 200 cached x $0.075 + 500 out x $0.60, per 1M tokens:
    # (120 + 15 + 300) / 1e6 USD = 0.000435 USD = 435,000 nano-dollars.
    assert price.cost_nano(TokenCounts(prompt=1000, completion=500, cached=200)) == 435_000


def test_anthropic_cache_write_tokens_have_their_own_price() -> None:
    price = TABLE.lookup("anthropic", "claude-sonnet-4")
    assert price is not None
    # 100 plain x $3 + 300 read x $0.30 + 600 written x $3.75 + 50 out x $15
    tokens = TokenCounts(prompt=1000, completion=50, cached=300, cache_write=600)
    assert price.cost_nano(tokens) == (300 + 90 + 2250 + 750) * 1000


def test_route_override_replaces_only_what_it_sets() -> None:
    base = TABLE.for_route("openai", "gpt-4o", PriceOverride(output=Decimal("9.5")))
    assert base == Price(Decimal("2.50"), Decimal("9.5"), Decimal("1.25"), None)
    custom = TABLE.for_route(
        "openai_compatible", "llama", PriceOverride(input=Decimal("0.2"), output=Decimal("0.4"))
    )
    assert custom is not None and custom.cost_nano(TokenCounts(10, 10)) == 6000
    assert TABLE.for_route("openai_compatible", "llama", PriceOverride()) is None


def test_sums_over_a_million_requests_do_not_drift() -> None:
    price = Price(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"))
    one = price.cost_nano(TokenCounts(prompt=13, completion=7, cached=3))
    assert one == 10 * 150 + 3 * 75 + 7 * 600
    assert sum([one] * 1_000_000) == one * 1_000_000
    as_float = sum([one / 1e9] * 1_000_000)
    assert as_float != one * 1_000_000 / 1e9  # what floats would have done


def test_finer_than_nano_prices_round_half_even_once_per_request() -> None:
    price = Price(Decimal("0.0375"), Decimal("0"))
    assert price.cost_nano(TokenCounts(prompt=1)) == 38  # 37.5 -> 38 (half-even)
    assert price.cost_nano(TokenCounts(prompt=3)) == 112  # 112.5 -> 112


def test_usd_formatting_is_exact_decimal() -> None:
    assert usd(435_000) == "0.000435"
    assert usd(10 * 10**9) == "10"
    assert usd(1) == "0.000000001"
    assert usd(0) == "0"


def test_unpriced_routes_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(
        '[providers.local]\ntype = "openai_compatible"\nbase_url = "http://127.0.0.1:1/v1"\n'
        '[[models]]\nalias = "a"\nroutes = [{ provider = "local", model = "llama" },\n'
        '  { provider = "local", model = "priced", input_price = 0.1, output_price = 0.2 }]\n'
    )
    warnings = unpriced_routes(load_config(path, env={}))
    assert len(warnings) == 1 and "local/llama has no known price" in warnings[0]
