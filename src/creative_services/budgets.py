"""Spending limits: reserve an estimate before the call, settle the real cost after.

A :class:`BudgetBackend` decides atomically whether a call may start. The client reserves the
most the call could cost (the priciest candidate's prices, the prompt's size over-estimated,
``max_tokens`` of output) before any HTTP request, then settles the reservation with the real cost,
or releases it when the call fails. :class:`InMemoryBudget` enforces limits inside one process;
the Django adapter enforces them across processes with database counters.

Which limits apply to a call is decided in one place, :func:`applicable_limits` (pure), for every
backend: for each scope (user, tenant, global) and period (day, month), a limit naming the member
(``scope_id="7"``) **replaces** the every-member limit of the same scope and period (give one user
a bigger or a smaller budget); among several limits of the same kind the smallest amount wins.
Every amount a backend is handed (a reservation, a settled cost) is checked by
:func:`check_amount`: a finite number of dollars from 0 up to :data:`MAX_AMOUNT`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from typing import Any, Literal, Protocol, runtime_checkable

from creative_services.exceptions import BudgetExceededError, InvalidRequestError

__all__ = [
    "BudgetBackend",
    "BudgetLimit",
    "InMemoryBudget",
    "Period",
    "Reservation",
    "Scope",
    "applicable_limits",
    "check_amount",
    "estimate_prompt_tokens",
    "period_key",
    "round_up",
    "takes_timeout",
]

Scope = Literal["user", "tenant", "global"]
Period = Literal["day", "month"]
CounterKey = tuple[str, str, str, str]
"""A counter: (scope, member, period, bucket), e.g. ``("user", "7", "day", "2026-11-25")``."""

SCOPES: tuple[Scope, ...] = ("user", "tenant", "global")
PERIODS: dict[Period, str] = {"day": "%Y-%m-%d", "month": "%Y-%m"}
"""The periods and the ``strftime`` format of their UTC bucket: the one table of periods."""
MAX_AMOUNT = Decimal("1000000")
"""The largest reservation or cost (USD) a backend accepts: far above any one call, far below
what the Django counters' ``numeric(20, 10)`` columns hold, so no sum of them can overflow."""


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
        if self.scope_id is not None:
            if self.scope == "global":
                raise InvalidRequestError("a global limit applies to everyone: no scope_id")
            object.__setattr__(self, "scope_id", str(self.scope_id))


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
        timeout: float | None = None,
    ) -> Reservation:
        """Hold ``amount`` against every applicable limit.

        ``timeout`` (optional) is what is left of the call's deadline, in seconds: a backend
        answers within it and holds the reservation at most that long plus a margin (a lease).
        Raises: BudgetExceededError; BudgetUnavailableError (its storage does not answer).
        """
        ...

    async def asettle(self, reservation: Reservation, cost: Decimal) -> None:
        """Replace the held amount by the real ``cost``."""
        ...

    async def arelease(self, reservation: Reservation) -> None:
        """Give the held amount back (the call failed before costing anything known)."""
        ...


def period_key(period: Period, now: datetime) -> str:
    """The counter bucket of ``now`` (UTC): ``2026-11-25`` for a day, ``2026-11`` for a month."""
    return now.astimezone(UTC).strftime(PERIODS[period])


def applicable_limits(
    limits: Iterable[BudgetLimit],
    *,
    user_id: int | str | None,
    tenant_id: int | str | None,
    now: datetime,
) -> list[tuple[CounterKey, BudgetLimit]]:
    """The counters a call must fit in, each with the one limit that applies, sorted by key.

    Pure. A call is held against the user limits of ``user_id``, the tenant limits of
    ``tenant_id`` (none when the id is None) and the global limits. Per scope and period a limit
    whose ``scope_id`` is the member replaces the every-member one; the smallest amount wins
    among limits of the same kind. Sorted, so that backends lock counters in one order.
    """
    members = {"user": user_id, "tenant": tenant_id, "global": "*"}
    best: dict[tuple[str, str], tuple[bool, BudgetLimit]] = {}
    for limit in limits:
        member = members[limit.scope]
        if member is None:
            continue
        specific = limit.scope_id is not None and limit.scope != "global"
        if specific and str(member) != limit.scope_id:
            continue
        slot = (limit.scope, limit.period)
        held = best.get(slot)
        if held is None or (specific, -limit.amount) > (held[0], -held[1].amount):
            best[slot] = (specific, limit)
    found = [
        ((scope, str(members[scope]), period, period_key(period, now)), limit)  # type: ignore[arg-type]
        for (scope, period), (_, limit) in best.items()
    ]
    found.sort(key=lambda pair: pair[0])
    return found


@lru_cache(maxsize=64)
def takes_timeout(backend: type[Any]) -> bool:
    """Whether ``backend.areserve`` takes the optional ``timeout`` (what is left of the call's
    deadline): backends written before it was added to :class:`BudgetBackend` do not."""
    try:
        params = inspect.signature(backend.areserve).parameters.values()
    except (AttributeError, TypeError, ValueError):
        return False
    return any(p.name == "timeout" or p.kind is p.VAR_KEYWORD for p in params)


def check_amount(value: Decimal | int | str | float, what: str = "amount") -> Decimal:
    """``value`` as a Decimal of dollars: finite, from 0 to :data:`MAX_AMOUNT`.

    Raises: InvalidRequestError (naming ``what`` and the allowed range).
    """
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError:
        raise InvalidRequestError(
            f"budget {what} must be a number from 0 to {MAX_AMOUNT} USD, got {value!r}", param=what
        ) from None
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        raise InvalidRequestError(
            f"budget {what} must be from 0 to {MAX_AMOUNT} USD, got {amount}", param=what
        )
    return amount


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

    Which limits apply is :func:`applicable_limits` (the member's own limit replaces the
    every-member one), the same rule as the Django backend's.
    """

    def __init__(self, limits: Sequence[BudgetLimit], *, clock: Any = None) -> None:
        self.limits = tuple(limits)
        self._now = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self.spent: dict[str, Decimal] = {}
        self.reserved: dict[str, Decimal] = {}

    async def areserve(
        self,
        *,
        request_id: str,
        amount: Decimal,
        user_id: int | str | None,
        tenant_id: int | str | None,
        timeout: float | None = None,
    ) -> Reservation:
        """Hold ``amount`` against every applicable limit (``timeout`` is not needed here).

        Raises: BudgetExceededError, InvalidRequestError (an amount out of range).
        """
        amount = check_amount(amount)
        with self._lock:
            applicable = [
                (":".join(key), limit)
                for key, limit in applicable_limits(
                    self.limits, user_id=user_id, tenant_id=tenant_id, now=self._now()
                )
            ]
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
        """Replace the held amount by the real ``cost``.

        Raises: InvalidRequestError (a cost out of range: the hold is released, nothing spent).
        """
        try:
            cost = check_amount(cost, "cost")
        except InvalidRequestError:
            self._move(reservation, Decimal(0))
            raise
        self._move(reservation, cost)

    async def arelease(self, reservation: Reservation) -> None:
        """Give the held amount back."""
        await self.asettle(reservation, Decimal(0))

    def _move(self, reservation: Reservation, cost: Decimal) -> None:
        with self._lock:
            for key in reservation.keys:
                self.reserved[key] = self.reserved.get(key, Decimal(0)) - reservation.amount
                self.spent[key] = self.spent.get(key, Decimal(0)) + cost
