"""Item 10: budgets and books under a storm of concurrent calls with random 429/5xx/resets.

Every call leaves exactly one usage record (none lost, none doubled), a failed call releases its
reservation, spending never passes a limit (reservations are worst-case, so the limit can only be
approached by the calls in flight), and memory stays flat from one storm to the next.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
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
    LLMError,
    RetryPolicy,
)
from creative_services.budgets import Reservation
from creative_services.testing.fake_provider import FakeProvider

from ._helpers import entry

CALLS = 1000
PROMPT = "storm"


class CheckedBudget(InMemoryBudget):
    """Checks after every change that spending stays within the limit."""

    def __init__(self, limit: Decimal) -> None:
        super().__init__([BudgetLimit("global", "month", limit)])
        self.limit = limit
        self.reserves = self.settles = self.releases = 0
        self.peak_in_flight = Decimal(0)

    def _check(self) -> None:
        spent = sum(self.spent.values(), Decimal(0))
        reserved = sum(self.reserved.values(), Decimal(0))
        assert spent <= self.limit, (spent, self.limit)
        assert spent + reserved <= self.limit, (spent, reserved, self.limit)
        assert reserved >= 0
        self.peak_in_flight = max(self.peak_in_flight, reserved)

    async def areserve(self, **kwargs: Any) -> Reservation:
        reservation = await super().areserve(**kwargs)
        self.reserves += 1
        self._check()
        return reservation

    async def asettle(self, reservation: Reservation, cost: Decimal) -> None:
        await super().asettle(reservation, cost)
        if cost:
            self.settles += 1
        else:
            self.releases += 1
        self._check()


def script(fake: FakeProvider, rng: random.Random, n: int) -> None:
    """Queue ``n`` random answers: mostly successes, some 429s, 5xx and dropped connections."""
    for _ in range(n):
        roll = rng.random()
        if roll < 0.15:
            fake.fail(429, headers={"retry-after": "0.01"})
        elif roll < 0.25:
            fake.fail(rng.choice([500, 502, 503, 529]))
        elif roll < 0.28:
            fake.reset_connection()
        elif roll < 0.30:
            fake.fail(400, "bad request")
        else:
            fake.reply("ok", prompt_tokens=rng.randint(1, 50), completion_tokens=rng.randint(1, 20))


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


async def storm(client: DynamicLLMClient, n: int) -> list[Any]:
    return await asyncio.gather(
        *(client.generate(prompt=PROMPT, user_id=i % 17, max_tokens=20) for i in range(n)),
        return_exceptions=True,
    )


def check_books(
    results: list[Any], tracker: InMemoryUsageTracker, budget: CheckedBudget, spent_before: Decimal
) -> None:
    assert not [r for r in results if not isinstance(r, LLMError) and not hasattr(r, "content")]
    ok = [r for r in results if not isinstance(r, BaseException)]
    records = list(tracker.records)
    ids = Counter(r.request_id for r in records)
    assert len(records) == len(results), "a record was lost or doubled"
    assert max(ids.values()) == 1
    assert {r.request_id for r in ok} <= set(ids)
    outcomes = Counter(r.outcome for r in records)
    assert outcomes["success"] == len(ok)
    assert outcomes["error"] == len(results) - len(ok)
    spent = sum(budget.spent.values(), Decimal(0))
    assert spent - spent_before == sum((r.cost for r in ok), Decimal(0))
    assert all(v == 0 for v in budget.reserved.values()), "a reservation was never settled"
    assert budget.reserves == budget.settles + budget.releases


@pytest.fixture
def storm_provider() -> Iterator[FakeProvider]:
    # FakeProvider listens with a deep backlog, so a thousand connections at once reach it.
    with FakeProvider() as fake:
        yield fake


async def test_storm_of_a_thousand_calls_keeps_books_and_budget(storm_provider):
    fake_provider = storm_provider
    rng = random.Random(9)
    script(fake_provider, rng, 2 * CALLS)
    one = entry(
        fake_provider,
        max_tokens=20,
        cost_per_1k_input="0.5",
        cost_per_1k_output="1.5",
    )
    # Worst case per call: (10 prompt tokens * 0.5 + 20 * 1.5) / 1000 = $0.035, so $25 admits
    # about 700 of the 1,000 calls in flight at once; the budget refuses the rest.
    limit = Decimal("25")
    budget = CheckedBudget(limit)
    tracker = InMemoryUsageTracker(max_records=None)
    client = DynamicLLMClient(
        DictRegistry([one]),
        tracker=tracker,
        budget=budget,
        retry_policy=RetryPolicy(max_retries=3, timeout=120),
        sleep=no_wait,
    )

    started = time.monotonic()
    first = await storm(client, CALLS)
    elapsed = time.monotonic() - started
    check_books(first, tracker, budget, Decimal(0))
    refused = sum(isinstance(r, BudgetExceededError) for r in first)
    assert 0 < refused < CALLS
    assert budget.peak_in_flight <= limit

    # Memory: a second storm must not keep what the first one allocated.
    script(fake_provider, rng, CALLS)
    tracker.records.clear()
    fake_provider.requests.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        spent_before = sum(budget.spent.values(), Decimal(0))
        second = await storm(client, CALLS)
        check_books(second, tracker, budget, spent_before)
        tracker.records.clear()
        fake_provider.requests.clear()  # the fake's own log of requests is not ours
        del second
        for _ in range(5):  # the gather's last callbacks still hold the results for a tick
            await asyncio.sleep(0)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    diffs = after.compare_to(before, "lineno")
    grown = sum(s.size_diff for s in diffs)
    # Generous: about 1.5 MB is measured (aiohttp's pool and parsers); a leak of one record,
    # error or task per call would pass it.
    assert grown < 6 * 1024 * 1024, f"{grown / 1e6:.1f} MB kept after a second storm"
    print(f"first storm: {elapsed:.1f}s, {refused} refused, memory kept {grown / 1e6:.2f} MB")
    assert elapsed < 120
