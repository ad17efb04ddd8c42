"""DjangoBudget: spending limits enforced atomically across processes with database counters.

Limits are rows of :class:`~creative_services.contrib.django.models.BudgetRule` (edited in the
admin). Spending is kept in running counters, one
:class:`~creative_services.contrib.django.models.BudgetCounter` row per (scope, member, period,
bucket), e.g. (``user``, ``7``, ``day``, ``2026-11-25``), with ``spent`` and ``reserved`` columns.
A reservation never reads the usage log, so it costs the same with 500,000 usage rows as with none.

**Reserve** (one transaction, counters in sorted key order so that two transactions always lock
them in the same order and cannot deadlock), for every applicable limit::

    UPDATE counter SET reserved = reserved + :amount
     WHERE (scope, member, period, bucket) = :key
       AND spent <= (:limit - :amount) - reserved

One statement per counter: the database checks and increments under the row's lock, so two
processes can never both take the last room (PostgreSQL re-evaluates the condition on the newest
row version after waiting for a concurrent writer; SQLite holds the database's write lock from
the first UPDATE until commit). When no row was updated, the bucket's row is inserted with
``INSERT ... ON CONFLICT DO NOTHING`` (``bulk_create(ignore_conflicts=True)``) and the UPDATE runs
once more; if it still updates nothing, the limit refuses: the transaction rolls back (no counter
keeps anything) and :class:`~creative_services.exceptions.BudgetExceededError` is raised.
In steady state (the bucket's rows exist) that is one UPDATE per applicable limit.

The same transaction inserts the reservation's **lease**, a
:class:`~creative_services.contrib.django.models.BudgetLease` row: the counters it holds, the
amount, and when it expires (the call's deadline, ``timeout`` or 60 s, plus
``CREATIVE_SERVICES_BUDGET_LEASE_MARGIN``, 30 s by default).

**Settle**: delete the lease row, then ``SET reserved = reserved - :held, spent = spent + :cost``
(arithmetic in the database, like ``F()`` expressions) on the same rows, by key, in the same
order, in one transaction; a call that ends after midnight settles in the bucket it reserved in.
**Release** is a settle with cost 0. A settle whose lease row is gone was already applied (a retry)
and changes nothing; one whose lease was reclaimed adds its cost to ``spent`` only. So a settle can
be retried safely: when the database does not take it, it is retried in the background until it
does (:func:`pending_settles`), and the caller gets
:class:`~creative_services.exceptions.BudgetUnavailableError` (``pending=True``).

**Reclaim**: a lease whose holder died (SIGKILL, SIGTERM with calls in flight, a settle that never
came) expires. A reservation that does not fit gives back every expired lease first (any process,
no cron job: see ``_budget_sql.py``) and tries once more; each budget also sweeps at most once a
minute. The admin lists open reservations ("Budget reservations").

**Outages and hangs**: the ``a*`` methods wait at most ``CREATIVE_SERVICES_BUDGET_TIMEOUT``
(2 s by default), or what is left of the call (``timeout``) when that is less. A database that
does not answer in time, or fails (``OperationalError``), fails **closed** by default: the
reservation raises :class:`~creative_services.exceptions.BudgetUnavailableError` before any HTTP
request; with ``CREATIVE_SERVICES_BUDGET_FAIL_OPEN = True`` the call runs unbudgeted instead
(``budget_unavailable`` is logged; its cost is not counted by the budget, the usage log still has
it). For one second after that, operations do not wait for the database again.

**Amounts** are checked before any query (:func:`~creative_services.budgets.check_amount`): a
reservation or cost from 0 to 1,000,000 USD, so no sum can overflow the ``numeric(20, 10)``
columns; a settle with a cost out of range releases the reservation and raises
:class:`~creative_services.exceptions.InvalidRequestError`. User and tenant ids must be text of at
most 255 characters without NUL or lone surrogates.

Which limits apply is :func:`~creative_services.budgets.applicable_limits` (shared with
:class:`~creative_services.InMemoryBudget`): a member's own limit replaces the every-member limit
of the same scope and period. Limits are read through a per-instance cache: at most once per
``limits_ttl`` seconds (1 s by default), and at once after this process saved or deleted a limit
through the ORM; limits change rarely, the counters are always read live by the database.

SQLite stores decimals as binary floating point, so there the condition allows a slack of a
nano-dollar (``1e-9``) to keep rounding from refusing a reservation that fits exactly.
PostgreSQL's ``numeric`` is exact and gets no slack.

The ``a*`` methods (what :class:`~creative_services.DynamicLLMClient` calls) run the ORM work in
a small pool of worker threads (``creative-services-budget``), never on the event loop; the sync
methods run it in the calling thread (bounded by the database driver's own timeouts only).
Worker threads close their connections after each job as Django does at the end of a request
(``CONN_MAX_AGE``), and when stopped (:func:`stop_budget_workers`).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, NoReturn

from creative_services._request import check_member_id
from creative_services.budgets import (
    BudgetLimit,
    Reservation,
    applicable_limits,
    check_amount,
)
from creative_services.contrib.django._budget_pool import (
    pending_settles,
    pool,
    retry_settle,
    stop_budget_workers,
)
from creative_services.contrib.django._budget_sql import (
    Key,
    encode_counters,
    purge_reclaimed,
    reclaim_expired,
    statements,
)
from creative_services.exceptions import (
    BudgetExceededError,
    BudgetUnavailableError,
    InvalidRequestError,
)

__all__ = ["DjangoBudget", "pending_settles", "stop_budget_workers"]

SQLITE_SLACK = Decimal("1e-9")
DEFAULT_TIMEOUT = 60.0
"""The call deadline a lease assumes when the caller passes none (RetryPolicy's default)."""
SWEEP_EVERY = 60.0
"""Seconds between two sweeps of expired leases by one budget (besides those on a refusal)."""
DOWN_FOR = 1.0
"""Seconds operations fail at once, without waiting, after the database did not answer."""
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available


def _log() -> Any:
    from creative_services._log import get_logger

    return get_logger()


@dataclass(frozen=True, slots=True)
class _Limits:
    """The active limit rows of one database."""

    rules: tuple[BudgetLimit, ...]
    loaded_at: float
    generation: int


@dataclass(frozen=True, slots=True)
class _Token:
    """What :class:`DjangoBudget` keeps in a :class:`Reservation`: where its counters are."""

    alias: str
    keys: tuple[Key, ...]
    lease: str = ""


def _transient(exc: BaseException) -> bool:
    """A lock conflict reported before anything was committed: safe to run the transaction again."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def _unreachable(exc: BaseException) -> bool:
    """The database did not answer or failed: an outage, not a mistake in our statements."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


def _wall() -> datetime:
    """Now, for leases: the real time (``clock`` moves the buckets only)."""
    return datetime.now(UTC)


class DjangoBudget:
    """Per-user, per-tenant and global USD limits per day and month, kept in the database.

    ::

        client = DynamicLLMClient(DjangoLLMRegistry(), budget=DjangoBudget())

    Limits are :class:`~creative_services.contrib.django.models.BudgetRule` rows (admin:
    "Budget limits"); a call with ``user_id=7`` is held against the user limits of user 7, a
    call with ``tenant_id`` against the tenant limits, every call against the global ones.
    Buckets are UTC days and months (``clock`` returns the current time; for tests). A
    reservation that would take any counter's ``spent + reserved`` past its limit raises
    :class:`~creative_services.exceptions.BudgetExceededError` and holds nothing.

    ``using`` is the database alias (default: the router's write database for the counters).
    ``limits_ttl`` is how long (seconds) a process keeps using the limit rows it read: other
    processes' changes apply within that time, this process's own ORM saves at once.
    Transient lock conflicts (deadlock, ``database is locked``) are retried ``retries`` times.
    ``timeout``, ``fail_open`` and ``lease_margin`` default to the settings
    ``CREATIVE_SERVICES_BUDGET_TIMEOUT``, ``_FAIL_OPEN`` and ``_LEASE_MARGIN``.
    See the module documentation for the atomic protocol, leases and outages.
    """

    def __init__(
        self,
        *,
        using: str | None = None,
        limits_ttl: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        retries: int = 3,
        timeout: float | None = None,
        fail_open: bool | None = None,
        lease_margin: float | None = None,
    ) -> None:
        self.using = using
        self.limits_ttl = limits_ttl
        self.retries = retries
        self.timeout = timeout
        self.fail_open = fail_open
        self.lease_margin = lease_margin
        self._now = clock or (lambda: datetime.now(UTC))
        self._limits: dict[str, _Limits] = {}
        self._limits_lock = threading.Lock()
        self._down_until = 0.0
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    def __repr__(self) -> str:
        return f"DjangoBudget(using={self.using!r}, limits_ttl={self.limits_ttl})"

    # --- the BudgetBackend protocol (async) ------------------------------------------------------

    async def areserve(
        self,
        *,
        request_id: str,
        amount: Decimal,
        user_id: int | str | None,
        tenant_id: int | str | None,
        timeout: float | None = None,
    ) -> Reservation:
        """Hold ``amount`` against every applicable limit, in a worker thread, within the
        budget's timeout (or ``timeout``, what is left of the call, when that is less).

        Raises: BudgetExceededError (nothing is held then), BudgetUnavailableError (the database
        did not answer in time; unless the budget fails open), InvalidRequestError.
        """
        amount = check_amount(amount)
        user_id = check_member_id(user_id, "user_id")
        tenant_id = check_member_id(tenant_id, "tenant_id")
        alias = self._alias()
        cached = self._fresh_limits(alias)
        if cached is not None and not self._applicable(cached, user_id, tenant_id):
            return Reservation(request_id, amount)  # no limit applies: no query
        if time.monotonic() < self._down_until:
            return self._unavailable(request_id, amount, None)
        job = partial(
            self.reserve,
            request_id=request_id,
            amount=amount,
            user_id=user_id,
            tenant_id=tenant_id,
            timeout=timeout,
        )
        inner = asyncio.wrap_future(pool().submit(job))
        try:
            return await asyncio.wait_for(asyncio.shield(inner), self._bound(timeout))
        except TimeoutError:
            inner.add_done_callback(self._release_abandoned)  # it may still land: give it back
            self._down_until = time.monotonic() + DOWN_FOR
            return self._unavailable(request_id, amount, None)
        except asyncio.CancelledError:
            # The caller will never see this reservation: give it back once it is made.
            inner.add_done_callback(self._release_abandoned)
            raise

    async def asettle(self, reservation: Reservation, cost: Decimal) -> None:
        """Replace the held amount by the real ``cost``, in a worker thread, within the budget's
        timeout.

        Raises: BudgetUnavailableError (``pending``: the settle is retried in the background
        until the database takes it), InvalidRequestError (a cost out of range: released).
        """
        if not reservation.keys:
            return
        token = self._token(reservation)
        try:
            checked = check_amount(cost, "cost")
        except InvalidRequestError:
            checked = Decimal(0)  # what a retry applies; settle() below releases and raises
        if time.monotonic() < self._down_until:
            self._retry_later(reservation, token, checked, None)
        inner = asyncio.wrap_future(pool().submit(partial(self.settle, reservation, cost)))
        try:
            await asyncio.wait_for(asyncio.shield(inner), self._bound(None))
        except TimeoutError:
            inner.add_done_callback(_consume)
            self._down_until = time.monotonic() + DOWN_FOR
            self._retry_later(reservation, token, checked, None)

    async def arelease(self, reservation: Reservation) -> None:
        """Give the held amount back (the call failed), as :meth:`asettle` with cost 0."""
        await self.asettle(reservation, Decimal(0))

    def _bound(self, timeout: float | None) -> float:
        """Seconds an async operation may wait for the database."""
        from creative_services.contrib.django.conf import conf

        bound = self.timeout if self.timeout is not None else conf.BUDGET_TIMEOUT
        return bound if timeout is None else max(0.01, min(bound, timeout))

    def _release_abandoned(self, future: asyncio.Future[Reservation]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        reservation = future.result()
        if reservation.keys:
            pool().submit(partial(self._release_quietly, reservation))

    def _release_quietly(self, reservation: Reservation) -> None:
        try:
            self.release(reservation)
        except Exception as exc:
            _log().error(
                "budget_release_failed",
                request_id=reservation.request_id,
                amount=str(reservation.amount),
                error=type(exc).__name__,
            )

    # --- the same, from sync code --------------------------------------------------------------

    def reserve(
        self,
        *,
        request_id: str,
        amount: Decimal | int | str,
        user_id: int | str | None = None,
        tenant_id: int | str | None = None,
        timeout: float | None = None,
    ) -> Reservation:
        """Sync twin of :meth:`areserve` (not from an event loop thread); ``timeout`` here only
        sets the lease's expiry.

        Raises: BudgetExceededError, BudgetUnavailableError, InvalidRequestError.
        """
        amount = check_amount(amount)
        user_id = check_member_id(user_id, "user_id")
        tenant_id = check_member_id(tenant_id, "tenant_id")
        alias = self._alias()
        try:
            wanted = self._applicable(self._current_limits(alias), user_id, tenant_id)
            if not wanted:
                return Reservation(request_id, amount)
            self._sweep(alias)
            lease = uuid.uuid4().hex
            expires = _wall() + timedelta(seconds=self._lease_seconds(timeout))
            hold = partial(self._hold, alias, wanted, amount, (lease, request_id, expires))
            try:
                self._atomic(alias, hold)
            except BudgetExceededError:
                # Give back expired leases (waiting for another process's reclaim to commit, so
                # the room it frees is seen), then once more: only then is the refusal real.
                self._reclaim(alias)
                self._atomic(alias, hold)
        except Exception as exc:
            if not _unreachable(exc):
                raise
            return self._unavailable(request_id, amount, exc)
        keys = tuple(key for key, _ in wanted)
        return Reservation(
            request_id,
            amount,
            tuple(":".join(key) for key in keys),
            token=_Token(alias, keys, lease),
        )

    def settle(self, reservation: Reservation, cost: Decimal | int | str) -> None:
        """Sync twin of :meth:`asettle`: ``reserved -= held``, ``spent += cost``.

        Raises: BudgetUnavailableError (retried in the background), InvalidRequestError.
        """
        if not reservation.keys:
            return
        token = self._token(reservation)
        try:
            checked, error = check_amount(cost, "cost"), None
        except InvalidRequestError as exc:
            checked, error = Decimal(0), exc  # release what it holds, then say why
        try:
            self._atomic(token.alias, partial(self._move, token, reservation.amount, checked))
        except Exception as exc:
            if not _unreachable(exc):
                raise
            self._retry_later(reservation, token, checked, exc)
        if error is not None:
            raise error

    def release(self, reservation: Reservation) -> None:
        """Sync twin of :meth:`arelease`: a settle with cost 0."""
        self.settle(reservation, Decimal(0))

    def refresh_limits(self) -> None:
        """Read the limit rows again at the next reservation (e.g. after a raw SQL change)."""
        with self._limits_lock:
            self._limits.clear()

    def reclaim(self) -> int:
        """Give back now what expired leases hold; how many there were (no need to call it:
        reservations do it when they need the room, and at most once a minute)."""
        return self._reclaim(self._alias())

    # --- failures ------------------------------------------------------------------------------

    def _unavailable(
        self, request_id: str, amount: Decimal, exc: BaseException | None
    ) -> Reservation:
        """Fail closed (raise) or open (an unbudgeted reservation), as configured."""
        from creative_services.contrib.django.conf import conf

        fail_open = self.fail_open if self.fail_open is not None else conf.BUDGET_FAIL_OPEN
        why = "did not answer in time" if exc is None else f"failed ({type(exc).__name__})"
        _log().warning("budget_unavailable", request_id=request_id, fail_open=fail_open, error=why)
        if fail_open:
            return Reservation(request_id, amount)
        raise BudgetUnavailableError(
            f"the budget database {why}: the call was refused before any request (the budget "
            "fails closed; CREATIVE_SERVICES_BUDGET_FAIL_OPEN = True lets calls run unbudgeted)"
        ) from exc

    def _retry_later(
        self, reservation: Reservation, token: _Token, cost: Decimal, exc: BaseException | None
    ) -> NoReturn:
        """Hand the settle to the background retrier and tell the caller. Raises always."""
        retry_settle(
            token.lease or reservation.request_id,
            partial(self._settle_or_raise, reservation, token, cost),
        )
        why = "did not answer in time" if exc is None else f"failed ({type(exc).__name__})"
        _log().warning("budget_settle_pending", request_id=reservation.request_id, error=why)
        raise BudgetUnavailableError(
            f"the budget database {why}: the settle of {reservation.request_id} is retried in "
            "the background until it is applied",
            pending=True,
        ) from exc

    def _settle_or_raise(self, reservation: Reservation, token: _Token, cost: Decimal) -> None:
        """One background try of a settle. Raises: BudgetUnavailableError (try again later)."""
        try:
            self._atomic(token.alias, partial(self._move, token, reservation.amount, cost))
        except Exception as exc:
            if _unreachable(exc):
                raise BudgetUnavailableError("the budget database is still unavailable") from exc
            raise
        self._down_until = 0.0

    def _token(self, reservation: Reservation) -> _Token:
        token = reservation.token
        if not isinstance(token, _Token):
            raise InvalidRequestError("this reservation was not made by a DjangoBudget")
        return token

    def _lease_seconds(self, timeout: float | None) -> float:
        from creative_services.contrib.django.conf import conf

        margin = self.lease_margin if self.lease_margin is not None else conf.BUDGET_LEASE_MARGIN
        return max(0.0, timeout if timeout is not None else DEFAULT_TIMEOUT) + margin

    # --- database work -------------------------------------------------------------------------

    def _alias(self) -> str:
        if self.using is not None:
            return self.using
        from django.db import router

        from creative_services.contrib.django.budget_models import BudgetCounter

        return str(router.db_for_write(BudgetCounter))

    def _atomic(self, alias: str, work: Callable[[], Any]) -> Any:
        """Run ``work`` in one transaction; again after a transient lock conflict."""
        from django.db import OperationalError, connections, transaction

        outer = connections[alias].in_atomic_block  # inside the caller's transaction: no retry
        for attempt in range(self.retries + 1):
            try:
                with transaction.atomic(using=alias):
                    return work()
            except OperationalError as exc:
                if outer or attempt >= self.retries or not _transient(exc):
                    raise
                time.sleep((0.005 + random.random() * 0.01) * 2**attempt)  # noqa: S311
        return None  # not reached

    def _hold(
        self,
        alias: str,
        wanted: Sequence[tuple[Key, Decimal]],
        amount: Decimal,
        lease: tuple[str, str, datetime],
    ) -> None:
        from django.db import connections

        conn = connections[alias]
        sql = statements(conn)
        slack = SQLITE_SLACK if conn.vendor == "sqlite" else Decimal(0)
        now = self._stamp(conn)
        with conn.cursor() as cursor:
            for key, limit in wanted:
                room = limit - amount  # the most the counter may hold before ours is added
                if room < 0:
                    self._refuse(alias, key, limit, amount)
                params = [amount, limit, now, *key, room + slack]
                cursor.execute(sql.hold, params)
                if cursor.rowcount == 1:
                    continue
                # No row took it: the bucket is new (create it, then try again) or it is full.
                self._create(alias, key, limit)
                cursor.execute(sql.hold, params)
                if cursor.rowcount != 1:
                    self._refuse(alias, key, limit, amount)
            lease_id, request_id, expires = lease
            counters = encode_counters([key for key, _ in wanted])
            expiry = conn.ops.adapt_datetimefield_value(expires)
            cursor.execute(
                sql.lease, [lease_id, request_id[:255], counters, amount, expiry, now, False]
            )

    @staticmethod
    def _stamp(conn: Any) -> Any:
        from django.utils import timezone

        return conn.ops.adapt_datetimefield_value(timezone.now())

    @staticmethod
    def _create(alias: str, key: Key, limit: Decimal) -> None:
        """Insert the counter row of ``key`` unless it exists (ON CONFLICT DO NOTHING)."""
        from creative_services.contrib.django.budget_models import BudgetCounter

        scope, member, period, bucket = key
        BudgetCounter.objects.using(alias).bulk_create(
            [BudgetCounter(scope=scope, member=member, period=period, bucket=bucket, limit=limit)],
            ignore_conflicts=True,
        )

    def _refuse(self, alias: str, key: Key, limit: Decimal, amount: Decimal) -> NoReturn:
        from creative_services.contrib.django.budget_models import BudgetCounter

        scope, member, period, bucket = key
        row = (
            BudgetCounter.objects.using(alias)
            .filter(scope=scope, member=member, period=period, bucket=bucket)
            .values_list("spent", "reserved")
            .first()
        )
        used = (row[0] + row[1]) if row else Decimal(0)
        raise BudgetExceededError(scope, member, period, limit, used, amount)

    def _move(self, token: _Token, held: Decimal, cost: Decimal) -> None:
        """End the lease, then move the counters: all of it when the lease was open, the cost
        only when it was reclaimed, nothing when it is gone (this settle was applied before)."""
        from django.db import connections

        conn = connections[token.alias]
        sql = statements(conn)
        now = self._stamp(conn)
        with conn.cursor() as cursor:
            if token.lease:
                cursor.execute(sql.end_open, [token.lease, False])
                if cursor.rowcount != 1:
                    cursor.execute(sql.end_any, [token.lease])
                    if cursor.rowcount != 1 or not cost:
                        return
                    held = Decimal(0)  # reclaimed: the hold went back already
            for key in token.keys:  # sorted: the order in which reserve locks them
                cursor.execute(sql.move, [held, cost, now, *key])

    def _reclaim(self, alias: str) -> int:
        """Give back what expired leases hold (own transaction); how many there were."""
        count, amount = self._atomic(alias, partial(reclaim_expired, alias, _wall()))
        if count:
            _log().warning("budget_leases_reclaimed", leases=count, amount=str(amount))
        return int(count)

    def _sweep(self, alias: str) -> None:
        """At most once per :data:`SWEEP_EVERY`: reclaim expired leases, purge old ones."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        self._reclaim(alias)
        self._atomic(alias, partial(purge_reclaimed, alias, _wall()))

    # --- limits --------------------------------------------------------------------------------

    def _fresh_limits(self, alias: str) -> _Limits | None:
        """The cached limits of ``alias`` if still fresh, else None (no I/O)."""
        from creative_services.contrib.django import budget_models

        limits = self._limits.get(alias)
        if (
            limits is not None
            and limits.generation == budget_models.generation
            and time.monotonic() - limits.loaded_at < self.limits_ttl
        ):
            return limits
        return None

    def _current_limits(self, alias: str) -> _Limits:
        """The limits of ``alias``, read again when the cached ones are stale (one query)."""
        limits = self._fresh_limits(alias)
        if limits is not None:
            return limits
        from creative_services.contrib.django import budget_models

        with self._limits_lock:
            limits = self._fresh_limits(alias)
            if limits is not None:
                return limits
            generation = budget_models.generation  # before the query: a later bump reloads
            loaded_at = time.monotonic()
            rows = (
                budget_models.BudgetRule.objects.using(alias)
                .filter(is_active=True)
                .order_by()
                .values_list("scope", "period", "scope_id", "amount")
            )
            rules = tuple(
                BudgetLimit(scope, period, amount, None if scope == "global" else scope_id or None)
                for scope, period, scope_id, amount in rows
            )
            limits = self._limits[alias] = _Limits(rules, loaded_at, generation)
            return limits

    def _applicable(
        self, limits: _Limits, user_id: int | str | None, tenant_id: int | str | None
    ) -> list[tuple[Key, Decimal]]:
        """The counters a call must fit in, with their limits, sorted by key."""
        if not limits.rules:
            return []
        found = applicable_limits(
            limits.rules, user_id=user_id, tenant_id=tenant_id, now=self._now()
        )
        return [(key, limit.amount) for key, limit in found]


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: asyncio does not log it as never retrieved
