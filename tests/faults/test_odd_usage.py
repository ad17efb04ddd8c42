"""Issue 14 item 7: odd provider usage (negative, fractional or absurd token counts, a negative
or 1e300 cost) no longer costs the answer or its record: the counts are replaced by a local
count flagged ``usage_estimated``, the cost by the price map's, and a warning names it. Negative
counts used to raise InvalidEntryError from the books (no record, the budget's spent lowered);
1e30 tokens or a cost of 1e300 were booked as they came."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from creative_services import (
    BudgetLimit,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InMemoryUsageTracker,
)
from creative_services._litellm import MAX_REPORTED_TOKENS, provider_counts
from creative_services.budgets import MAX_AMOUNT

from ._helpers import entry, records


def client_for(fake: Any) -> DynamicLLMClient:
    budget = InMemoryBudget([BudgetLimit("global", "month", Decimal(100))])
    return DynamicLLMClient(
        DictRegistry([entry(fake)]), tracker=InMemoryUsageTracker(), budget=budget
    )


def spent(client: DynamicLLMClient) -> Decimal:
    budget = client.budget
    assert isinstance(budget, InMemoryBudget)
    return sum(budget.spent.values(), Decimal(0))


ODD_COUNTS = [
    {"prompt_tokens": -5, "completion_tokens": -3},
    {"prompt_tokens": 10, "completion_tokens": -1},
    {"prompt_tokens": 10**30, "completion_tokens": 5},
    {"prompt_tokens": 10, "completion_tokens": 2**63},
    {"prompt_tokens": MAX_REPORTED_TOKENS + 1, "completion_tokens": 5},
]


@pytest.mark.parametrize("counts", ODD_COUNTS, ids=repr)
@pytest.mark.parametrize("streamed", [False, True], ids=["generate", "stream"])
async def test_odd_token_counts_keep_the_answer_and_its_record(
    fake_provider, counts, streamed, caplog
):
    client = client_for(fake_provider)
    caplog.set_level(logging.WARNING, logger="creative_services")
    if streamed:
        fake_provider.stream(["the ", "answer"], **counts)
        async with client.stream(prompt="hi") as stream:
            text = "".join([piece async for piece in stream])
        response = stream.response
    else:
        fake_provider.reply("the answer", **counts)
        response = await client.generate(prompt="hi")
        text = response.content

    assert text == "the answer"
    assert response.usage.estimated is True
    assert 0 < response.usage.prompt_tokens < 100
    assert 0 < response.usage.completion_tokens < 100
    (record,) = records(client)
    assert (record.outcome, record.usage_estimated) == ("success", True)
    assert record.cost is not None
    assert 0 < record.cost < Decimal("0.01")
    assert spent(client) == record.cost  # settled at what was booked, never lowered
    assert "provider_usage_odd" in caplog.text


@pytest.mark.parametrize("cost", [1e300, -1, "1e30", float("inf")], ids=repr)
async def test_an_odd_provider_cost_is_priced_from_tokens_instead(fake_provider, cost, caplog):
    client = client_for(fake_provider)
    caplog.set_level(logging.WARNING, logger="creative_services")
    fake_provider.reply("fine", usage_extra={"cost": cost})
    response = await client.generate(prompt="hi")
    (record,) = records(client)
    assert record.cost_source == "litellm"
    assert record.cost is not None
    assert record.cost < Decimal("0.01")
    assert response.cost == record.cost == spent(client)


async def test_a_sane_provider_cost_is_still_the_providers(fake_provider):
    client = client_for(fake_provider)
    fake_provider.reply("fine", usage_extra={"cost": 0.0042})
    await client.generate(prompt="hi")
    (record,) = records(client)
    assert (record.cost_source, record.cost) == ("provider", Decimal("0.0042"))


def test_the_largest_believable_counts_are_kept():
    class Raw:
        prompt_tokens = MAX_REPORTED_TOKENS
        completion_tokens = 7.0  # a whole float is a count
        completion_tokens_details = None
        prompt_tokens_details = None

    assert provider_counts(Raw()) == {
        "prompt_tokens": MAX_REPORTED_TOKENS,
        "completion_tokens": 7,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
    }
    assert MAX_REPORTED_TOKENS * Decimal("0.0001") < MAX_AMOUNT  # a believed count never overflows
    Raw.completion_tokens = 2.5  # type: ignore[assignment]
    assert provider_counts(Raw()) is None
    Raw.completion_tokens = float("nan")  # type: ignore[assignment]
    assert provider_counts(Raw()) is None
