"""One table of limit cases run against both budget backends: they must agree (issue 16).

The rule (``creative_services.budgets.applicable_limits``): per scope and period, a limit naming
the member replaces the every-member limit; the smallest amount wins among limits of one kind;
user limits need a ``user_id``, tenant limits a ``tenant_id``; global limits hold every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from creative_services import BudgetExceededError, BudgetLimit, InMemoryBudget
from creative_services.adapters import DjangoBudget
from creative_services.contrib.django.budgets import stop_budget_workers
from creative_services.contrib.django.models import BudgetRule

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
Rule = tuple[str, str, str, str | None]  # scope, period, amount, scope_id
Step = tuple[Any, Any, str, Any]  # user_id, tenant_id, amount, "ok" or (scope, member, limit)

CASES: dict[str, tuple[list[Rule], list[Step]]] = {
    "the member's bigger limit replaces the general one": (
        [("user", "day", "1", None), ("user", "day", "5", "7")],
        [(7, None, "2", "ok"), (7, None, "2", "ok"), (7, None, "1.5", ("user", "7", "5")),
         (8, None, "2", ("user", "8", "1")), (8, None, "1", "ok")],
    ),
    "the member's smaller limit replaces the general one": (
        [("user", "day", "5", None), ("user", "day", "1", "7")],
        [(7, None, "2", ("user", "7", "1")), (8, None, "2", "ok"), (7, None, "1", "ok")],
    ),
    "two general limits of one kind: the smallest wins": (
        [("user", "day", "3", None), ("user", "day", "2", None)],
        [(1, None, "2", "ok"), (1, None, "0.5", ("user", "1", "2"))],
    ),
    "a member limit of another member or scope does not apply": (
        [("user", "day", "1", None), ("tenant", "day", "9", "7"), ("user", "day", "9", "8")],
        [(7, None, "1", "ok"), (7, None, "0.1", ("user", "7", "1"))],
    ),
    "no tenant id: tenant limits do not apply; no user id: user limits do not": (
        [("tenant", "month", "1", None), ("user", "day", "1", None)],
        [(None, None, "5", "ok"), (1, None, "0.9", "ok"), (None, "acme", "0.9", "ok"),
         (1, "acme", "0.2", ("tenant", "acme", "1"))],
    ),
    "day and month both hold, and the global limit holds everyone": (
        [("user", "day", "2", None), ("user", "month", "3", None), ("global", "day", "4", None)],
        [(1, None, "2", "ok"), (1, None, "0.5", ("user", "1", "2")), (2, None, "2", "ok"),
         (3, None, "0.5", ("global", "*", "4"))],
    ),
    "a member's month limit replaces only the month": (
        [("user", "day", "1", None), ("user", "month", "10", None), ("user", "month", "1.5", "7")],
        [(7, None, "1", "ok"), (7, None, "0.4", ("user", "7", "1"))],
    ),
}  # fmt: skip


class Memory:
    def __init__(self, rules: list[Rule]) -> None:
        limits = [BudgetLimit(s, p, Decimal(a), i) for s, p, a, i in rules]  # type: ignore[arg-type]
        self.budget = InMemoryBudget(limits, clock=lambda: NOW)

    def reserve(self, user_id: Any, tenant_id: Any, amount: Decimal) -> Any:
        return asyncio.run(
            self.budget.areserve(
                request_id="r", amount=amount, user_id=user_id, tenant_id=tenant_id
            )
        )


class Django:
    def __init__(self, rules: list[Rule]) -> None:
        for scope, period, amount, scope_id in rules:
            BudgetRule.objects.create(
                scope=scope, period=period, amount=Decimal(amount), scope_id=scope_id
            )
        self.budget = DjangoBudget(clock=lambda: NOW)

    def reserve(self, user_id: Any, tenant_id: Any, amount: Decimal) -> Any:
        return self.budget.reserve(
            request_id="r", amount=amount, user_id=user_id, tenant_id=tenant_id
        )


@pytest.fixture(autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    stop_budget_workers()


@pytest.mark.parametrize("backend", [Memory, Django], ids=["memory", "django"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_both_backends_apply_the_same_limits(case: str, backend: Any) -> None:
    rules, steps = CASES[case]
    budget = backend(rules)
    outcomes = []
    for user_id, tenant_id, amount, _ in steps:
        try:
            budget.reserve(user_id, tenant_id, Decimal(amount))
            outcomes.append("ok")
        except BudgetExceededError as exc:
            outcomes.append((exc.scope, exc.scope_id, str(exc.limit.normalize())))
    assert outcomes == [step[3] for step in steps]
