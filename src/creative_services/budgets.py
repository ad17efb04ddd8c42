"""Spending limits: reserve an estimate before the call, settle the real cost after.

A :class:`BudgetBackend` decides atomically whether a call may start. The client reserves the
most the call could cost (the priciest candidate's prices, the prompt's size over-estimated,
``max_tokens`` of output) before any HTTP request, then settles the reservation with the real cost,
or releases it when the call fails. :class:`InMemoryBudget` enforces limits inside one process;
the Django adapter enforces them across processes with database counters.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from creative_services.exceptions import BudgetExceededError, InvalidRequestError

__all__ = [
    "BudgetBackend",
    "BudgetLimit",
    "InMemoryBudget",
    "Period",
    "Reservation",
    "Scope",
    "estimate_prompt_tokens",
    "period_key",
    "round_up",
]

Scope = Literal["user", "tenant", "global"]
Period = Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """At most ``amount`` USD per ``period`` for one scope (``scope_id`` None: every member)."""

    scope: Scope
    period: Period
    amount: Decimal
    scope_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            object.__setattr__(self, "amount", Decimal(str(self.amount)))
        if not self.amount.is_finite() or self.amount < 0:
            raise InvalidRequestError(f"budget amount must be >= 0, got {self.amount}")


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a backend reserved for one call; hand it back to settle or release it."""

    request_id: str
    amount: Decimal
    keys: tuple[str, ...] = ()
    """The backend's counters this reservation holds (e.g. ``user:7:day:2026-11-25``)."""
    token: Any = field(default=None, compare=False)
    """Backend-private data."""


@runtime_checkable
class BudgetBackend(Protocol):
    """Atomic reserve / settle / release of spending against limits."""

    async def areserve(
        self,
        *,
        request_id: str,
        amount: Decimal,
        user_id: int | str | None,
        tenant_id: int | str | None,
    ) -> Reservation:
        """Hold ``amount`` against every applicable limit. Raises: BudgetExceededError."""
        ...

    async def asettle(self, reservation: Reservation, cost: Decimal) -> None:
        """Replace the held amount by the real ``cost``."""
        ...

    async def arelease(self, reservation: Reservation) -> None:
        """Give the held amount back (the call failed before costing anything known)."""
        ...


def period_key(period: Period, now: datetime) -> str:
    """The counter bucket of ``now`` (UTC): ``2026-11-25`` for a day, ``2026-11`` for a month."""
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%d") if period == "day" else now.strftime("%Y-%m")


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """An over-estimate of a prompt's tokens without a tokenizer: one per 3 characters, plus
    a few per message. Reservations must not be too small; settling corrects them."""
    chars = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif content is not None:
            chars += len(str(content))
    return -(-chars // 3) + 8 * len(messages)


def round_up(amount: Decimal) -> Decimal:
    """Round a reservation up to a millionth of a dollar."""
    return amount.quantize(Decimal("0.000001"), rounding=ROUND_CEILING)


class InMemoryBudget:
    """Limits enforced inside this process (thread- and task-safe).

    ::

        InMemoryBudget([BudgetLimit("user", "day", Decimal("1.00")),
                        BudgetLimit("global", "month", Decimal("200"))])
    """

    def __init__(self, limits: Sequence[BudgetLimit], *, clock: Any = None) -> None:
        self.limits = tuple(limits)
        self._now = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self.spent: dict[str, Decimal] = {}
        self.reserved: dict[str, Decimal] = {}

    def _applicable(
        self, user_id: int | str | None, tenant_id: int | str | None
    ) -> list[tuple[str, BudgetLimit]]:
        now = self._now()
        found = []
        for limit in self.limits:
            member = {"user": user_id, "tenant": tenant_id, "global": "*"}[limit.scope]
            if member is None or (limit.scope_id is not None and str(member) != limit.scope_id):
                continue
            key = f"{limit.scope}:{member}:{limit.period}:{period_key(limit.period, now)}"
            found.append((key, limit))
        return found

    async def areserve(
        self,
        *,
        request_id: str,
        amount: Decimal,
        user_id: int | str | None,
        tenant_id: int | str | None,
    ) -> Reservation:
        """Hold ``amount`` against every applicable limit. Raises: BudgetExceededError."""
        with self._lock:
            applicable = self._applicable(user_id, tenant_id)
            for key, limit in applicable:
                used = self.spent.get(key, Decimal(0)) + self.reserved.get(key, Decimal(0))
                if used + amount > limit.amount:
                    raise BudgetExceededError(
                        limit.scope, key.split(":")[1], limit.period, limit.amount, used, amount
                    )
            for key, _ in applicable:
                self.reserved[key] = self.reserved.get(key, Decimal(0)) + amount
        return Reservation(request_id, amount, tuple(key for key, _ in applicable))

    async def asettle(self, reservation: Reservation, cost: Decimal) -> None:
        """Replace the held amount by the real ``cost``."""
        with self._lock:
            for key in reservation.keys:
                self.reserved[key] = self.reserved.get(key, Decimal(0)) - reservation.amount
                self.spent[key] = self.spent.get(key, Decimal(0)) + cost

    async def arelease(self, reservation: Reservation) -> None:
        """Give the held amount back."""
        await self.asettle(reservation, Decimal(0))
