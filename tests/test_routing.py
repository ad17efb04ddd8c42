"""Pure routing: candidate order inside a tier, escalation between tiers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from creative_services import (
    AllModelsFailedError,
    AuthenticationError,
    BudgetExceededError,
    ContentPolicyError,
    ContextWindowExceededError,
    DictRegistry,
    InvalidRequestError,
    LLMEntry,
    LLMTier,
    MissingAPIKeyError,
    NoActiveEntryError,
    RateLimitError,
    ServiceUnavailableError,
    StructuredOutputError,
)
from creative_services.routing import (
    LADDER,
    escalation_candidates,
    escalation_path,
    order_candidates,
    should_escalate,
)

E, S, P, L = LLMTier.ECONOMY, LLMTier.STANDARD, LLMTier.PREMIUM, LLMTier.LOCAL


@pytest.mark.parametrize(
    ("start", "escalate", "path"),
    [
        # escalate=False: the tier alone
        (E, False, [E]),
        (S, False, [S]),
        (P, False, [P]),
        (L, False, [L]),
        # escalate=True: up the ladder, never into or out of local
        (E, True, [E, S, P]),
        (S, True, [S, P]),
        (P, True, [P]),
        (L, True, [L]),
        ("Economy", True, [E, S, P]),
        # explicit lists: exactly those tiers after the start, local included when asked for
        (E, [P], [E, P]),
        (E, ["premium", "standard"], [E, P, S]),
        (E, [E, S], [E, S]),
        (L, [E, S], [L, E, S]),
        (E, [L], [E, L]),
        (P, [S], [P, S]),
        (S, [], [S]),
        (S, (P,), [S, P]),
        # one tier instead of a list
        (E, "premium", [E, P]),
        (L, S, [L, S]),
    ],
)
def test_escalation_path(start: LLMTier | str, escalate: Any, path: list[LLMTier]) -> None:
    assert escalation_path(start, escalate=escalate) == path


@pytest.mark.parametrize(
    ("start", "escalate", "fix"),
    [
        (E, 1, "True, False, a tier or a list of tiers"),
        (E, None, "got NoneType"),
        (E, ["gold"], "escalate[0]: invalid tier 'gold'"),
        (E, [S, S], "names tier 'standard' twice"),
        (E, [S, E], "names tier 'economy' twice"),
        ("gold", True, "invalid tier 'gold'"),
    ],
)
def test_bad_escalation_is_refused_naming_the_fix(start: Any, escalate: Any, fix: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        escalation_path(start, escalate=escalate)
    assert fix in str(info.value)


def test_ladder_excludes_local() -> None:
    assert LADDER == (E, S, P)
    assert L not in LADDER


def _entry(name: str, tier: LLMTier, **fields: Any) -> LLMEntry:
    return LLMEntry(name=name, provider="openai", model_name=name, tier=tier, **fields)


REGISTRY = DictRegistry(
    [
        _entry("eco-b", E, priority=1),
        _entry("eco-a", E),
        _entry("prem", P),
        _entry("off", S, is_active=False),
        _entry("llama", L),
    ]
)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ([E], ["eco-a", "eco-b"]),
        ([E, S, P], ["eco-a", "eco-b", "prem"]),  # standard has no active entry: skipped
        ([S, P], ["prem"]),
        ([L, E], ["llama", "eco-a", "eco-b"]),
    ],
)
def test_escalation_candidates_chain_the_tiers(path: list[LLMTier], names: list[str]) -> None:
    assert [e.name for e in escalation_candidates(REGISTRY.candidates, path)] == names


def test_escalation_candidates_fail_for_the_start_tier_when_none_is_active() -> None:
    with pytest.raises(NoActiveEntryError) as info:
        escalation_candidates(REGISTRY.candidates, [S])
    assert info.value.tier == "standard"


def test_candidates_inside_a_tier_are_ordered_by_priority_then_price() -> None:
    entries: Sequence[LLMEntry] = [
        _entry("pricey", S, cost_per_1k_input="1", cost_per_1k_output="1"),
        _entry("unpriced", S),
        _entry("cheap", S, cost_per_1k_input=Decimal("0.1"), cost_per_1k_output="0.1"),
        _entry("first", S, priority=-1),
    ]
    assert [e.name for e in order_candidates(entries, S)] == [
        "first",
        "cheap",
        "pricey",
        "unpriced",
    ]


_FAIL = ServiceUnavailableError("down", status_code=503)
_POLICY = ContentPolicyError("refused", status_code=400)


@pytest.mark.parametrize(
    ("error", "escalates"),
    [
        (_FAIL, True),
        (RateLimitError("slow down", status_code=429), True),
        (AuthenticationError("no", status_code=401), True),
        (ContextWindowExceededError("too long", status_code=400), True),
        (StructuredOutputError("not JSON", raw="{"), True),
        (NoActiveEntryError("economy"), True),
        (AllModelsFailedError([_FAIL, _POLICY], attempts=2), True),
        (AllModelsFailedError([_POLICY, _POLICY], attempts=2), False),
        (_POLICY, False),
        (BudgetExceededError("global", "", "day", Decimal(1), Decimal(1), Decimal(1)), False),
        (MissingAPIKeyError("eco", "OPENAI_API_KEY"), False),
        (InvalidRequestError("bad"), False),
        (ValueError("not ours"), False),
    ],
)
def test_should_escalate(error: BaseException, escalates: bool) -> None:
    assert should_escalate(error) is escalates
