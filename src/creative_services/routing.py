"""Pure candidate ordering: which entries may serve a tier, in which order, and which tiers next.

The order is the fallback order: lowest ``priority`` first, then the cheapest (by the entry's
own prices; entries without a price come after priced ones), then registry order.

Escalation (opt-in) continues the fallback into the next tiers up the ladder
``economy -> standard -> premium`` when every entry of a tier failed. ``local`` is never entered
or left unless an explicit list of tiers says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from creative_services.exceptions import (
    AllModelsFailedError,
    BudgetExceededError,
    ContentPolicyError,
    InvalidRequestError,
    InvalidTierError,
    LLMError,
    NoActiveEntryError,
)
from creative_services.types import LLMEntry, LLMTier

__all__ = [
    "LADDER",
    "blended_price",
    "escalation_candidates",
    "escalation_path",
    "order_candidates",
    "should_escalate",
]

LADDER: tuple[LLMTier, ...] = (LLMTier.ECONOMY, LLMTier.STANDARD, LLMTier.PREMIUM)
"""The tiers ``escalate=True`` climbs, cheapest first. ``local`` is not on it."""

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


def escalation_path(
    start: LLMTier | str, *, escalate: bool | LLMTier | str | Sequence[LLMTier | str]
) -> list[LLMTier]:
    """The tiers a call may use, in order: ``start`` first, then where it may escalate to.

    ``escalate=False``: only ``start``. ``escalate=True``: ``start`` and the tiers above it on
    :data:`LADDER` (``economy -> standard -> premium``); ``local`` stays ``local``. A tier or a
    list of tiers: ``start`` then exactly those, in that order (the only way into or out of
    ``local``); a list may begin with ``start`` itself.

    Raises:
        InvalidRequestError: ``escalate`` is not a bool, a tier or a list of tiers, names an
            unknown tier, or names a tier twice.
    """
    try:
        first = LLMTier.parse(start)
    except InvalidTierError as exc:
        raise InvalidRequestError(str(exc), param="tier") from None
    if isinstance(escalate, bool):
        if not escalate or first not in LADDER:
            return [first]
        return list(LADDER[LADDER.index(first) :])
    if isinstance(escalate, str):  # one tier (LLMTier is a str too)
        escalate = [escalate]
    if not isinstance(escalate, Sequence):
        raise InvalidRequestError(
            f"escalate must be True, False, a tier or a list of tiers such as "
            f"['standard', 'premium'], got {type(escalate).__name__}",
            param="escalate",
        )
    path = [first]
    for i, item in enumerate(escalate):
        try:
            tier = LLMTier.parse(item)
        except InvalidTierError as exc:
            raise InvalidRequestError(f"escalate[{i}]: {exc}", param="escalate") from None
        if i == 0 and tier is first:
            continue
        if tier in path:
            raise InvalidRequestError(
                f"escalate names tier {tier.value!r} twice (the call starts at {first.value!r}); "
                f"list each tier once, in the order to try them",
                param="escalate",
            )
        path.append(tier)
    return path


def escalation_candidates(
    candidates_of: Callable[[LLMTier], Sequence[LLMEntry]], path: Sequence[LLMTier]
) -> list[LLMEntry]:
    """Every tier's candidates along ``path``, in order: one fallback list across tiers.

    ``candidates_of`` is the registry's ``candidates``. A tier without an active entry is
    skipped; the call fails only when no tier on the path has one.

    Raises:
        NoActiveEntryError: for ``path[0]``, when no tier on the path has an active entry.
    """
    found: list[LLMEntry] = []
    for tier in path:
        try:
            found.extend(candidates_of(tier))
        except NoActiveEntryError:
            continue
    if not found:
        raise NoActiveEntryError(path[0].value)
    return found


def should_escalate(error: BaseException) -> bool:
    """Whether a higher tier may succeed where this error ended a tier.

    Yes for provider failures (down, rate-limited, timed out, context window too small, an
    answer that failed its ``response_format``) and for a tier with no active entry. No for a
    spending limit (a higher tier costs more) or a content-policy refusal (the prompt is the
    problem), nor for configuration or argument errors.
    """
    if isinstance(error, NoActiveEntryError):
        return True
    if isinstance(error, BudgetExceededError | ContentPolicyError):
        return False
    if isinstance(error, AllModelsFailedError):
        return any(should_escalate(failure) for failure in error.failures)
    return isinstance(error, LLMError)
