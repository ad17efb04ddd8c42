"""Pure cost resolution: provider > entry > LiteLLM map > None; local is free."""

from __future__ import annotations

from decimal import Decimal

from creative_services import LLMEntry, Usage
from creative_services.pricing import TokenPrices, resolve_cost

USAGE = Usage(prompt_tokens=1000, completion_tokens=400, reasoning_tokens=100, cached_tokens=200)
MAP = TokenPrices(
    input=Decimal("0.000001"), output=Decimal("0.000004"), cached_input=Decimal("1E-7")
)


def entry(**kw):
    return LLMEntry(name="e", provider="openai", model_name="m", **kw)


def test_provider_reported_cost_wins():
    priced = entry(cost_per_1k_input=1, cost_per_1k_output=1)
    assert resolve_cost(USAGE, priced, provider_cost=Decimal("0.5"), map_prices=MAP) == (
        Decimal("0.5"),
        "provider",
    )


def test_entry_prices_bill_reasoning_as_output():
    priced = entry(cost_per_1k_input="0.01", cost_per_1k_output="0.03")
    cost, source = resolve_cost(USAGE, priced, map_prices=MAP)
    assert source == "entry"
    assert cost == Decimal("0.01") + Decimal("0.5") * Decimal("0.03")


def test_price_map_prices_cached_tokens_at_the_cache_rate():
    cost, source = resolve_cost(USAGE, entry(), map_prices=MAP)
    assert source == "litellm"
    assert cost == 800 * MAP.input + 200 * Decimal("1E-7") + 500 * MAP.output


def test_only_one_entry_price_is_not_a_price():
    cost, source = resolve_cost(USAGE, entry(cost_per_1k_input=1), map_prices=None)
    assert (cost, source) == (None, "unknown")


def test_local_tier_is_free_even_with_prices():
    local = entry(tier="local", cost_per_1k_input=1, cost_per_1k_output=1)
    assert resolve_cost(USAGE, local, provider_cost=Decimal(3)) == (Decimal(0), "local")
