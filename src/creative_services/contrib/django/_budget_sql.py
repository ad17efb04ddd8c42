"""The budget's statements on the counter and lease tables, and the reclaim of expired leases.

Plain SQL, built once per database: the ORM spends far more CPU building an ``UPDATE`` (about
0.3 ms) than the database spends running it, and these run once per limit and call.

Lock order (PostgreSQL), so that no two of these transactions can wait for each other in a circle:
a reservation locks its counters in sorted key order, then inserts its (new) lease row; a settle
deletes its lease row, then updates the counters in the same order; a reclaim takes expired lease
rows in expiry order (``FOR UPDATE``; a settle holds no counter while it waits for its lease
row), then the counters in sorted order. A reclaim that waited for another one sees its rows
reclaimed already and skips them; the reservation that asked then finds the room freed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["Statements", "encode_counters", "purge_reclaimed", "reclaim_expired", "statements"]

Key = tuple[str, str, str, str]
RECLAIM_BATCH = 500
"""Leases given back per reclaim transaction."""
KEEP_RECLAIMED = timedelta(days=1)
"""How long a reclaimed lease row stays, so that a settle arriving that late still counts its
cost (once); older ones are deleted by the next reclaim."""


@dataclass(frozen=True, slots=True)
class Statements:
    """The statements of one database (``%s`` placeholders)."""

    hold: str
    """reserved += amount, if spent + reserved + amount <= limit: params amount, limit, now,
    *key, limit - amount."""
    move: str
    """reserved -= held, spent += cost: params held, cost, now, *key."""
    lease: str
    """Insert a lease row: params id, request_id, counters, amount, expires_at, created_at."""
    end_open: str
    """Delete an open (not reclaimed) lease row: params id."""
    end_any: str
    """Delete a lease row, reclaimed or not: params id."""


_SQL: dict[tuple[str, str, str], Statements] = {}


def statements(conn: Any) -> Statements:
    """The statements for this connection's database (built once per vendor and tables)."""
    from creative_services.contrib.django.budget_models import BudgetCounter, BudgetLease

    counter, lease = BudgetCounter._meta, BudgetLease._meta
    cache_key = (conn.vendor, counter.db_table, lease.db_table)
    found = _SQL.get(cache_key)
    if found is not None:
        return found
    q = conn.ops.quote_name

    def col(meta: Any, name: str) -> str:
        return str(q(meta.get_field(name).column))

    table, leases = q(counter.db_table), q(lease.db_table)
    spent, reserved = col(counter, "spent"), col(counter, "reserved")
    updated = col(counter, "updated_at")
    where = " AND ".join(f"{col(counter, n)} = %s" for n in ("scope", "member", "period", "bucket"))
    columns = ", ".join(
        col(lease, n)
        for n in ("id", "request_id", "counters", "amount", "expires_at", "created_at", "reclaimed")
    )
    lease_id, reclaimed = col(lease, "id"), col(lease, "reclaimed")
    found = _SQL[cache_key] = Statements(
        hold=(
            f"UPDATE {table} SET {reserved} = {reserved} + %s, {col(counter, 'limit')} = %s, "  # noqa: S608
            f"{updated} = %s WHERE {where} AND {spent} <= %s - {reserved}"
        ),
        move=(
            f"UPDATE {table} SET {reserved} = {reserved} - %s, {spent} = {spent} + %s, "  # noqa: S608
            f"{updated} = %s WHERE {where}"
        ),
        lease=f"INSERT INTO {leases} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
        end_open=f"DELETE FROM {leases} WHERE {lease_id} = %s AND {reclaimed} = %s",  # noqa: S608
        end_any=f"DELETE FROM {leases} WHERE {lease_id} = %s",  # noqa: S608
    )
    return found


def encode_counters(keys: Sequence[Key]) -> str:
    """The counter keys of a lease as stored in its row (JSON)."""
    return json.dumps([list(key) for key in keys], separators=(",", ":"))


def reclaim_expired(alias: str, now: datetime) -> tuple[int, Decimal]:
    """Give the counters back what expired leases hold, in one transaction (the caller's).

    Returns how many leases were reclaimed and the amount they held (per lease). Reclaimed rows
    stay, marked ``reclaimed``, until :func:`purge_reclaimed`.
    """
    from django.db import connections

    from creative_services.contrib.django.budget_models import BudgetLease

    leases = BudgetLease.objects.using(alias)
    rows = list(
        leases.select_for_update()
        .filter(reclaimed=False, expires_at__lt=now)
        .order_by("expires_at")
        .values_list("id", "counters", "amount")[:RECLAIM_BATCH]
    )
    given: dict[Key, Decimal] = {}
    for _, counters, amount in rows:
        for scope, member, period, bucket in json.loads(counters):
            key = (scope, member, period, bucket)
            given[key] = given.get(key, Decimal(0)) + amount
    if rows:
        leases.filter(id__in=[row[0] for row in rows]).update(reclaimed=True)
        conn = connections[alias]
        move = statements(conn).move
        stamp = conn.ops.adapt_datetimefield_value(now)
        with conn.cursor() as cursor:
            for key in sorted(given):
                cursor.execute(move, [given[key], Decimal(0), stamp, *key])
    return len(rows), sum((row[2] for row in rows), Decimal(0))


def purge_reclaimed(alias: str, now: datetime) -> None:
    """Delete the rows of leases reclaimed more than :data:`KEEP_RECLAIMED` ago (own transaction:
    it holds no counter, so a late settle it waits for cannot wait for it)."""
    from creative_services.contrib.django.budget_models import BudgetLease

    BudgetLease.objects.using(alias).filter(
        reclaimed=True, expires_at__lt=now - KEEP_RECLAIMED
    ).delete()
