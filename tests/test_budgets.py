"""Budgets: reserve the worst case before any call, settle the real cost, release on failure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from creative_services import (
    BudgetExceededError,
    BudgetLimit,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InMemoryUsageTracker,
    LLMEntry,
    ServiceUnavailableError,
)
from creative_services.budgets import estimate_prompt_tokens, period_key
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
        await client.generate(prompt=PROMPT, user_id=1, tenant_id="acme")
    assert info.value.scope == "user"
    with pytest.raises(BudgetExceededError) as info:  # the tenant is over too
        await client.generate(prompt=PROMPT, user_id=2, tenant_id="acme")
    assert info.value.scope == "tenant"
    assert len(fake_provider.requests) == 1
