"""Totals over ``LLMUsage`` rows: calls, failures, tokens and the exact cost, whole or grouped.

Used by ``manage.py creative_services_usage`` and the usage admin's footer. Costs are summed in
the database. PostgreSQL (``numeric``) sums decimals exactly; SQLite stores them as 64-bit floats
(REAL), so there each cost is first rounded to an integer number of 1e-10 dollars (the column's
scale) and those integers are summed: the total is exact for every cost that has at most 15
significant digits, where a plain ``SUM`` would drift.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["GROUPS", "UsageSummary", "decimal_text", "grouped", "totals"]

GROUPS = ("user", "model", "tier", "day")
"""What ``grouped`` can group by."""
_SCALE = 10  # decimal places of LLMUsage.cost


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """The totals of a set of usage rows; ``key`` names the group (``None`` for all rows)."""

    key: str | None
    calls: int
    failures: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost: Decimal
    unpriced: int
    """Calls whose cost is unknown (``None``): counted as 0 in :attr:`cost`."""

    @property
    def total_tokens(self) -> int:
        """Prompt, completion and reasoning tokens together."""
        return self.prompt_tokens + self.completion_tokens + self.reasoning_tokens

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: integers, and the cost as an exact decimal string."""
        return {
            "key": self.key,
            "calls": self.calls,
            "failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost": decimal_text(self.cost),
            "unpriced_calls": self.unpriced,
        }


def decimal_text(value: Decimal) -> str:
    """``value`` in plain notation without trailing zeros (``Decimal("1.50")`` -> ``"1.5"``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _aggregates(vendor: str) -> dict[str, Any]:
    from django.db.models import BigIntegerField, Count, F, Q, Sum, Value
    from django.db.models.functions import Cast, Round

    if vendor == "sqlite":  # REAL storage: sum exact integers of 1e-10 dollars
        cost: Any = Sum(Cast(Round(F("cost") * Value(10**_SCALE)), BigIntegerField()))
    else:
        cost = Sum("cost")
    return {
        "calls": Count("pk"),
        "failures": Count("pk", filter=~Q(outcome="success")),
        "prompt": Sum("prompt_tokens"),
        "completion": Sum("completion_tokens"),
        "reasoning": Sum("reasoning_tokens"),
        "priced": Count("cost"),
        "cost_sum": cost,
    }


def _summary(key: str | None, row: dict[str, Any], vendor: str) -> UsageSummary:
    raw = row["cost_sum"]
    if raw is None:
        cost = Decimal(0)
    elif vendor == "sqlite":
        cost = Decimal(int(raw)).scaleb(-_SCALE)
    else:
        cost = Decimal(raw)
    calls = int(row["calls"] or 0)
    return UsageSummary(
        key=key,
        calls=calls,
        failures=int(row["failures"] or 0),
        prompt_tokens=int(row["prompt"] or 0),
        completion_tokens=int(row["completion"] or 0),
        reasoning_tokens=int(row["reasoning"] or 0),
        cost=cost,
        unpriced=calls - int(row["priced"] or 0),
    )


def totals(queryset: Any) -> UsageSummary:
    """The totals of every row of ``queryset`` (one aggregate query)."""
    vendor = _vendor(queryset)
    return _summary(None, queryset.order_by().aggregate(**_aggregates(vendor)), vendor)


def grouped(queryset: Any, by: str) -> list[UsageSummary]:
    """Totals per user, model (``provider/model``), tier or day (in the current time zone).

    Days come in date order; the other groups by cost, then calls, highest first.
    Raises: ValueError for an unknown ``by``.
    """
    from django.db.models.functions import TruncDate

    vendor = _vendor(queryset)
    qs = queryset.order_by()
    if by == "user":
        rows = qs.values("user_id")
    elif by == "model":
        rows = qs.values("provider", "model")
    elif by == "tier":
        rows = qs.values("tier")
    elif by == "day":
        rows = qs.annotate(day=TruncDate("created_at")).values("day")
    else:
        raise ValueError(f"cannot group usage by {by!r}; choose one of {', '.join(GROUPS)}")
    out = [_summary(_key(by, row), row, vendor) for row in rows.annotate(**_aggregates(vendor))]
    if by == "day":
        return sorted(out, key=lambda s: s.key or "")
    return sorted(out, key=lambda s: (-s.cost, -s.calls, s.key or ""))


def _key(by: str, row: dict[str, Any]) -> str:
    if by == "user":
        return "(none)" if row["user_id"] is None else str(row["user_id"])
    if by == "model":
        provider, model = row["provider"] or "", row["model"] or ""
        return f"{provider}/{model}" if provider or model else "(unknown)"
    if by == "tier":
        return row["tier"] or "(unknown)"
    day = row["day"]
    return day.isoformat() if isinstance(day, dt.date) else str(day)


def _vendor(queryset: Any) -> str:
    from django.db import connections

    return str(connections[queryset.db].vendor)
