"""Cost of a call, in Decimal. Pure: the LiteLLM price map is looked up by the caller.

Order of trust: the cost the provider reported (OpenRouter's ``usage.cost``) > the entry's own
``cost_per_1k_input``/``cost_per_1k_output`` > LiteLLM's bundled offline price map > ``None``.
Unknown is ``None``, never a guessed rate. The ``local`` tier always costs 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from creative_services.types import CostSource, LLMEntry, LLMTier, Usage

__all__ = ["TokenPrices", "resolve_cost"]

_THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Prices per single token, as LiteLLM's map holds them."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


def resolve_cost(
    usage: Usage,
    entry: LLMEntry,
    *,
    provider_cost: Decimal | None = None,
    map_prices: TokenPrices | None = None,
) -> tuple[Decimal | None, CostSource]:
    """The cost of ``usage`` on ``entry`` and where the price came from."""
    if entry.tier is LLMTier.LOCAL:
        return Decimal(0), "local"
    if provider_cost is not None:
        return provider_cost, "provider"
    if entry.cost_per_1k_input is not None and entry.cost_per_1k_output is not None:
        cost = (
            Decimal(usage.prompt_tokens) * entry.cost_per_1k_input
            + Decimal(usage.output_tokens) * entry.cost_per_1k_output
        ) / _THOUSAND
        return cost, "entry"
    if map_prices is not None:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = (
            map_prices.input if map_prices.cached_input is None else map_prices.cached_input
        )
        cost = (
            Decimal(usage.prompt_tokens - cached) * map_prices.input
            + Decimal(cached) * cached_price
            + Decimal(usage.output_tokens) * map_prices.output
        )
        return cost, "litellm"
    return None, "unknown"
