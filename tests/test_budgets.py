"""Budgets: reserve the worst case before any call, settle the real cost, release on failure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from creative_services import (
    BudgetExceededError,
    BudgetLimit,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMEntry,
    ServiceUnavailableError,
)
from creative_services.budgets import (
    Reservation,
    applicable_limits,
    check_amount,
    estimate_prompt_tokens,
    period_key,
    takes_timeout,
)
from creative_services.testing.fake_provider import FakeProvider

PROMPT = "Write one word."


def priced_entry(fake: FakeProvider) -> LLMEntry:
    return LLMEntry(
        name="priced",
        provider="openai",
        model_name="gpt-4o-mini",
        api_key="sk-" + "test-budget-000000000000",
        api_endpoint=fake.base_url,
        max_tokens=100,
        cost_per_1k_input="1",
        cost_per_1k_output="2",
    )


def worst_case() -> Decimal:
    prompt = estimate_prompt_tokens([{"role": "user", "content": PROMPT}])
    return (Decimal(prompt) * 1 + Decimal(100) * 2) / 1000


def test_period_keys_are_utc_buckets():
    now = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert period_key("day", now) == "2026-11-25"
    assert period_key("month", now) == "2026-11"


def test_prompt_estimate_is_generous():
    assert estimate_prompt_tokens([{"role": "user", "content": "x" * 300}]) == 108


async def test_exactly_the_calls_that_fit_reach_the_provider(fake_provider, fake_clock):
    fake_provider.reply("ok", prompt_tokens=5, completion_tokens=1, delay=0.2, times=20)
    limit = worst_case() * 5
    budget = InMemoryBudget([BudgetLimit("user", "day", limit)])
    client = DynamicLLMClient(
        DictRegistry([priced_entry(fake_provider)]), budget=budget, clock=fake_clock
    )

    results = await asyncio.gather(
        *(client.generate(prompt=PROMPT, user_id=7) for _ in range(20)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(refused) == 15
    assert len(fake_provider.requests) == 5
    spent = sum(budget.spent.values(), Decimal(0))
    assert spent == 5 * (Decimal(5) * 1 + Decimal(1) * 2) / 1000
    assert spent <= limit
    assert all(v == 0 for v in budget.reserved.values())
    assert "user 7" in str(refused[0])
    assert refused[0].limit == limit
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    outcomes = sorted((r.outcome, r.error_class, r.attempts) for r in tracker.records)
    assert outcomes.count(("error", "BudgetExceededError", 0)) == 15


async def test_failed_call_releases_its_reservation(fake_provider, fake_clock):
    fake_provider.fail(500, times=3)
    budget = InMemoryBudget([BudgetLimit("global", "month", Decimal(10))])
    client = DynamicLLMClient(
        DictRegistry([priced_entry(fake_provider)]),
        budget=budget,
        clock=fake_clock,
        sleep=fake_clock.sleep,
    )
    with pytest.raises(ServiceUnavailableError):
        await client.generate(prompt=PROMPT)
    assert all(v == 0 for v in budget.reserved.values())
    assert all(v == 0 for v in budget.spent.values())


async def test_limits_apply_per_user_and_tenant(fake_provider, fake_clock):
    one_call = worst_case()
    budget = InMemoryBudget(
        [BudgetLimit("user", "day", one_call), BudgetLimit("tenant", "month", one_call * 3)]
    )
    client = DynamicLLMClient(
        DictRegistry([priced_entry(fake_provider)]), budget=budget, clock=fake_clock
    )
    fake_provider.reply("ok", prompt_tokens=10_000, completion_tokens=100, times=10)
    await client.generate(prompt=PROMPT, user_id=1, tenant_id="acme")
    with pytest.raises(BudgetExceededError) as info:  # user 1 spent more than a worst case
        await client.generate(prompt=PROMPT, user_id=1)
    assert info.value.scope == "user"
    with pytest.raises(BudgetExceededError) as info:  # the tenant is over too
        await client.generate(prompt=PROMPT, user_id=2, tenant_id="acme")
    assert info.value.scope == "tenant"
    assert len(fake_provider.requests) == 1


NOV_25 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("limits", "user_id", "tenant_id", "expected"),
    [
        # the member's own limit replaces the every-member one, whichever is bigger
        ([("user", "day", "1", None), ("user", "day", "5", "7")], 7, None,
         [(("user", "7", "day", "2026-11-25"), "5")]),
        ([("user", "day", "1", None), ("user", "day", "5", "7")], 8, None,
         [(("user", "8", "day", "2026-11-25"), "1")]),
        ([("user", "day", "5", None), ("user", "day", "1", "7")], "7", None,
         [(("user", "7", "day", "2026-11-25"), "1")]),
        # the smallest of one kind; no id: that scope is skipped; global always; sorted by key
        ([("user", "day", "3", None), ("user", "day", "2", None)], 1, None,
         [(("user", "1", "day", "2026-11-25"), "2")]),
        ([("tenant", "month", "1", None), ("global", "day", "9", None)], None, None,
         [(("global", "*", "day", "2026-11-25"), "9")]),
        ([("user", "month", "1", None), ("tenant", "month", "2", None)], 1, "acme",
         [(("tenant", "acme", "month", "2026-11"), "2"), (("user", "1", "month", "2026-11"), "1")]),
    ],
)  # fmt: skip
def test_applicable_limits_table(limits, user_id, tenant_id, expected):
    rules = [BudgetLimit(s, p, Decimal(a), i) for s, p, a, i in limits]
    found = applicable_limits(rules, user_id=user_id, tenant_id=tenant_id, now=NOV_25)
    assert [(key, str(limit.amount)) for key, limit in found] == expected


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-0.01", "1e300", "1000000.01", "abc"])
def test_amounts_out_of_range_are_refused_with_a_typed_error(bad):
    with pytest.raises(InvalidRequestError, match="from 0 to 1000000"):
        check_amount(bad, "cost")


def test_a_global_limit_has_no_member():
    with pytest.raises(InvalidRequestError):
        BudgetLimit("global", "day", Decimal(1), "7")


async def test_a_settle_with_an_overflowing_cost_releases_and_raises():
    budget = InMemoryBudget([BudgetLimit("user", "day", Decimal(1))], clock=lambda: NOV_25)
    held = await budget.areserve(request_id="a", amount=Decimal("0.5"), user_id=1, tenant_id=None)
    with pytest.raises(InvalidRequestError):
        await budget.asettle(held, Decimal("1e300"))
    assert budget.reserved == {"user:1:day:2026-11-25": 0}
    assert budget.spent == {"user:1:day:2026-11-25": 0}
    with pytest.raises(InvalidRequestError):
        await budget.areserve(request_id="b", amount=Decimal("-1"), user_id=1, tenant_id=None)


# --- the call's deadline reaches the backend ---------------------------------------------------


class OlderBackend(InMemoryBudget):
    """A backend written before ``timeout`` joined BudgetBackend.areserve."""

    async def areserve(  # type: ignore[override]
        self, *, request_id: str, amount: Decimal, user_id: Any, tenant_id: Any
    ) -> Reservation:
        return await super().areserve(
            request_id=request_id, amount=amount, user_id=user_id, tenant_id=tenant_id
        )


class TimedBackend(InMemoryBudget):
    def __init__(self) -> None:
        super().__init__([BudgetLimit("global", "month", Decimal(10))])
        self.timeouts: list[float | None] = []

    async def areserve(self, *, timeout: float | None = None, **kwargs: Any) -> Reservation:
        self.timeouts.append(timeout)
        return await super().areserve(**kwargs)


def test_what_is_left_of_the_deadline_is_passed_to_the_budget(fake_provider):
    budget = TimedBackend()
    client = DynamicLLMClient(DictRegistry([priced_entry(fake_provider)]), budget=budget)
    fake_provider.reply("ok", prompt_tokens=5, completion_tokens=1)
    client.generate_sync(prompt=PROMPT, timeout=4)
    (timeout,) = budget.timeouts
    assert timeout is not None
    assert 3.0 < timeout <= 4


def test_a_backend_without_timeout_still_works(fake_provider):
    budget = OlderBackend([BudgetLimit("global", "month", Decimal(10))])
    assert not takes_timeout(OlderBackend)
    assert takes_timeout(TimedBackend)
    assert takes_timeout(InMemoryBudget)
    client = DynamicLLMClient(DictRegistry([priced_entry(fake_provider)]), budget=budget)
    fake_provider.reply("ok", prompt_tokens=5, completion_tokens=1)
    assert client.generate_sync(prompt=PROMPT).content == "ok"
    assert sum(budget.spent.values()) == (Decimal(5) * 1 + Decimal(1) * 2) / 1000
