"""Pure candidate ordering: which entries may serve a tier, and in which order.

The order is the fallback order: lowest ``priority`` first, then the cheapest (by the entry's
own prices; entries without a price come after priced ones), then registry order.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from creative_services.types import LLMEntry, LLMTier

__all__ = ["blended_price", "order_candidates"]

_UNKNOWN = Decimal("Infinity")


def blended_price(entry: LLMEntry) -> Decimal:
    """Input plus output price per 1k tokens; infinity when either is unknown."""
    if entry.cost_per_1k_input is None or entry.cost_per_1k_output is None:
        return _UNKNOWN
    return entry.cost_per_1k_input + entry.cost_per_1k_output


def order_candidates(entries: Iterable[LLMEntry], tier: LLMTier) -> list[LLMEntry]:
    """The active entries of ``tier`` in fallback order."""
    indexed = [(i, e) for i, e in enumerate(entries) if e.is_active and e.tier is tier]
    indexed.sort(key=lambda ie: (ie[1].priority, blended_price(ie[1]), ie[0]))
    return [e for _, e in indexed]
