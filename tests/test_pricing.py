"""Exact costs: integer nano-dollars from Decimal prices, and each billing rule against the
bill the provider would send for a golden usage block (figures from the price table's
sources, worked by hand in each test)."""

from __future__ import annotations

import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.config import PriceOverride, ProviderConfig, load_config
from proxy.price_table import PriceTable, unpriced_routes
from proxy.pricing import Price, TokenCounts, usd
from proxy.providers.anthropic_response import to_openai_usage
from proxy.providers.deepseek import DeepSeekAdapter
from proxy.providers.gemini_response import to_usage

TABLE = PriceTable.builtin()
ROOT = Path(__file__).parent.parent


def price(provider: str, model: str) -> Price:
    found = TABLE.lookup(provider, model)
    assert found is not None, model
    return found


def nano(usd_amount: str) -> int:
    return int(Decimal(usd_amount).scaleb(9))


def test_the_table_is_dated_and_dated_ids_are_never_guessed() -> None:
    assert TABLE.updated.count("-") == 2
    assert price("openai", "gpt-4o-mini-2024-07-18") == price("openai", "gpt-4o-mini")
    # The first gpt-4o snapshot costs twice the current one: listed, not guessed.
    assert price("openai", "gpt-4o-2024-05-13") == Price(Decimal("5.00"), Decimal("15.00"))
    assert TABLE.lookup("mistral", "mistral-large-2411") is None  # retired, not "large"
    assert TABLE.lookup("openai", "gpt-4o-2099-01-01") is None
    assert price("mistral", "mistral-large-latest") == price("mistral", "mistral-large-2512")


def test_openai_cached_input() -> None:
    # 800 uncached x $0.15 + 200 cached x $0.075 + 500 out x $0.60 per 1M = $0.000435
    tokens = TokenCounts(prompt=1000, completion=500, cached=200)
    assert price("openai", "gpt-4o-mini").cost_nano(tokens) == nano("0.000435")


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (None, "0.01125"),  # 1000 x $1.25 + 1000 x $10
        ("default", "0.01125"),
        ("flex", "0.005625"),  # 1000 x $0.625 + 1000 x $5
        ("priority", "0.0225"),  # 1000 x $2.50 + 1000 x $20
        ("scale", "0.01125"),  # no rates of its own
    ],
)
def test_openai_service_tiers(tier: str | None, expected: str) -> None:
    tokens = TokenCounts(prompt=1000, completion=1000, service_tier=tier)
    assert price("openai", "gpt-5").cost_nano(tokens) == nano(expected)


def test_anthropic_cache_reads_and_five_minute_and_one_hour_writes() -> None:
    # Anthropic's usage block: input_tokens 100 (after the cache breakpoint), 300 read,
    # 600 written (400 for 5 minutes, 200 for an hour), 50 out, on Sonnet 4.5:
    usage = {
        "input_tokens": 100,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 600,
        "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 50,
    }
    tokens = TokenCounts.from_usage(to_openai_usage(usage))
    # 100 x $3 + 300 x $0.30 + 400 x $3.75 + 200 x $6 + 50 x $15 = $0.00384
    assert price("anthropic", "claude-sonnet-4-5").cost_nano(tokens) == nano("0.00384")


def test_claude_sonnet_above_200k_input_bills_every_token_at_the_long_context_rate() -> None:
    usage = {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1_000}
    tokens = TokenCounts.from_usage(to_openai_usage(usage))
    # 210k input in all, over 200k: 150k x $6 + 60k x $0.60 + 1k x $22.50 = $0.9585
    assert price("anthropic", "claude-sonnet-4-5").cost_nano(tokens) == nano("0.9585")
    short = TokenCounts.from_usage(to_openai_usage({**usage, "input_tokens": 100_000}))
    # 160k: 100k x $3 + 60k x $0.30 + 1k x $15 = $0.333
    assert price("anthropic", "claude-sonnet-4-5").cost_nano(short) == nano("0.333")


def test_gemini_2_5_pro_above_200k_prompt_tokens() -> None:
    metadata = {
        "promptTokenCount": 250_000,
        "cachedContentTokenCount": 50_000,
        "candidatesTokenCount": 2_000,
        "thoughtsTokenCount": 3_000,
    }
    tokens = TokenCounts.from_usage(to_usage(metadata))
    # 200k x $2.50 + 50k x $0.25 + 5k (answer and thoughts) x $15 = $0.5875
    assert price("gemini", "gemini-2.5-pro").cost_nano(tokens) == nano("0.5875")
    flash = TokenCounts.from_usage(to_usage({**metadata, "promptTokenCount": 100_000}))
    # 50k x $0.30 + 50k x $0.03 + 5k x $2.50 = $0.029 (cached reads at 0.03, not 0.075)
    assert price("gemini", "gemini-2.5-flash").cost_nano(flash) == nano("0.029")


def test_deepseek_cache_hits() -> None:
    adapter = DeepSeekAdapter(ProviderConfig(name="d", type="deepseek", base_url="http://x"))
    data = {
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "total_tokens": 1100,
            "prompt_cache_hit_tokens": 900,
            "prompt_cache_miss_tokens": 100,
        }
    }
    adapter.normalize(data)
    tokens = TokenCounts.from_usage(data["usage"])  # type: ignore[arg-type]
    # 100 x $0.14 + 900 x $0.0028 + 100 x $0.28 = $0.00004452
    assert price("deepseek", "deepseek-v4-flash").cost_nano(tokens) == nano("0.00004452")


def test_worst_case_covers_every_rule_that_can_apply() -> None:
    sonnet = price("anthropic", "claude-sonnet-4-5")
    # The dearest input rate (a 1-hour cache write, $6) and the output rate ($15) ...
    assert sonnet.worst_cost_nano(1000, 1000) == nano("0.021")
    # ... and above 200k input tokens the long-context ones ($12 and $22.50).
    assert sonnet.worst_cost_nano(250_000, 1000) == nano("3.0225")
    gpt5 = price("openai", "gpt-5")
    assert gpt5.worst_cost_nano(1000, 1000) == nano("0.01125")
    assert gpt5.worst_cost_nano(1000, 1000, "priority") == nano("0.0225")


def test_route_override_replaces_only_what_it_sets_and_drops_the_lists_rules() -> None:
    base = TABLE.for_route("openai", "gpt-4o", PriceOverride(output=Decimal("9.5")))
    assert base == Price(Decimal("2.50"), Decimal("9.5"), Decimal("1.25"))
    custom = TABLE.for_route(
        "openai_compatible", "llama", PriceOverride(input=Decimal("0.2"), output=Decimal("0.4"))
    )
    assert custom is not None and custom.cost_nano(TokenCounts(10, 10)) == 6000
    assert TABLE.for_route("openai_compatible", "llama", PriceOverride()) is None
    assert TABLE.for_route("openai", "gpt-5", PriceOverride()) == price("openai", "gpt-5")


def test_sums_over_a_million_requests_do_not_drift() -> None:
    cheap = Price(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"))
    one = cheap.cost_nano(TokenCounts(prompt=13, completion=7, cached=3))
    assert one == 10 * 150 + 3 * 75 + 7 * 600
    assert sum([one] * 1_000_000) == one * 1_000_000
    as_float = sum([one / 1e9] * 1_000_000)
    assert as_float != one * 1_000_000 / 1e9  # what floats would have done


def test_finer_than_nano_prices_round_half_even_once_per_request() -> None:
    fine = Price(Decimal("0.0375"), Decimal("0"))
    assert fine.cost_nano(TokenCounts(prompt=1)) == 38  # 37.5 -> 38 (half-even)
    assert fine.cost_nano(TokenCounts(prompt=3)) == 112  # 112.5 -> 112


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


def test_prices_check_prints_what_a_file_changes(tmp_path: Path) -> None:
    text = (ROOT / "proxy" / "data" / "prices.toml").read_text()
    text = text.replace(
        '"gpt-4o-mini"      = { input = 0.15,', '"gpt-4o-mini"      = { input = 0.12,'
    )
    text += '\n[openai."gpt-9"]\ninput = 1\noutput = 2\n'
    other = tmp_path / "prices.toml"
    other.write_text(text)
    run = subprocess.run(
        [sys.executable, "-m", "proxy", "prices", "check", str(other)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1, run.stderr
    assert "~ openai/gpt-4o-mini: input 0.15" in run.stdout and "->  input 0.12" in run.stdout
    assert "+ openai/gpt-9: input 1, output 2" in run.stdout
    same = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy",
            "prices",
            "check",
            str(ROOT / "proxy" / "data" / "prices.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert same.returncode == 0 and "no differences" in same.stdout


def test_whole_nano_rates_cost_exactly_what_the_decimals_say() -> None:
    """Rates given to 1/1000 of a dollar per 1M are whole nano-dollars per token and are
    summed as integers; the Decimal arithmetic every other price goes through must agree
    to the nano-dollar, whatever the mix of cached, written and output tokens."""
    rng = random.Random(13)
    for _ in range(3000):
        rates = [Decimal(rng.randrange(0, 200_000)) / 1000 for _ in range(5)]
        price = Price(rates[0], rates[1], rates[2], rates[3], rates[4])
        assert price._per_token is not None
        by_decimals = Price(rates[0], rates[1], rates[2], rates[3], rates[4])
        object.__setattr__(by_decimals, "_per_token", None)
        prompt = rng.randrange(0, 2_000_000)
        tokens = TokenCounts(
            prompt=prompt,
            completion=rng.randrange(0, 200_000),
            cached=rng.randrange(0, prompt + 10),
            cache_write=rng.randrange(0, prompt + 10),
            cache_write_1h=rng.randrange(0, prompt + 10),
        )
        assert price.cost_nano(tokens) == by_decimals.cost_nano(tokens)
    assert Price(Decimal("0.0001"), Decimal("1"))._per_token is None  # finer: Decimals


def test_usd_is_the_exact_decimal_of_any_amount() -> None:
    rng = random.Random(3)
    amounts = [rng.randrange(-(10**13), 10**13) for _ in range(3000)]
    for amount in [*amounts, 10**9, 10**10, -(10**9), 1, -1, 999_999_999]:
        assert usd(amount) == format(Decimal(amount).scaleb(-9).normalize(), "f")
