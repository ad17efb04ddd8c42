"""DjangoBudget: atomic reserve/settle/release on database counters, threads and processes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from creative_services import (
    BudgetExceededError,
    DynamicLLMClient,
    InvalidRequestError,
    ServiceUnavailableError,
    _litellm,
)
from creative_services.adapters import DjangoBudget, DjangoLLMRegistry
from creative_services.budgets import BudgetBackend, estimate_prompt_tokens
from creative_services.contrib.django.budgets import stop_budget_workers
from creative_services.contrib.django.models import (
    BudgetCounter,
    BudgetLease,
    BudgetRule,
    LLMUsage,
)

pytestmark = pytest.mark.django_db(transaction=True)

TESTS_DIR = Path(__file__).resolve().parents[2]
PROMPT = "Write one word."
D = Decimal


@pytest.fixture(autouse=True)
def _stop_budget_workers() -> Iterator[None]:
    """No worker connection outlives a test (PostgreSQL refuses to drop a database in use)."""
    yield
    stop_budget_workers()


class Clock:
    """A settable wall clock for the day and month buckets."""

    def __init__(self, when: datetime) -> None:
        self.now = when

    def __call__(self) -> datetime:
        return self.now


def limit(scope: str, period: str, amount: str, scope_id: str | None = None) -> BudgetRule:
    return BudgetRule.objects.create(
        scope=scope, period=period, amount=D(amount), scope_id=scope_id
    )


def counters() -> dict[str, tuple[Decimal, Decimal]]:
    """Every counter as key -> (spent, reserved)."""
    return {c.key: (c.spent, c.reserved) for c in BudgetCounter.objects.all()}


def worst_case() -> Decimal:
    """What the client reserves for PROMPT on the priced entry (1 and 2 USD per 1k, 100 out)."""
    prompt = estimate_prompt_tokens([{"role": "user", "content": PROMPT}])
    return (D(prompt) * 1 + D(100) * 2) / 1000


@pytest.fixture
def priced(make_llm: Callable[..., Any]) -> Any:
    return make_llm(
        "priced", cost_per_1k_input="1", cost_per_1k_output="2", max_tokens=100, tier="standard"
    )


NOV_25 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


# --- arithmetic ----------------------------------------------------------------------------------


def test_reserve_settle_and_release_move_the_counters():
    limit("global", "month", "1")
    budget = DjangoBudget(clock=Clock(NOV_25))
    assert isinstance(budget, BudgetBackend)

    first = budget.reserve(request_id="a", amount=D("0.3"))
    assert first.keys == ("global:*:month:2026-11",)
    assert counters() == {"global:*:month:2026-11": (0, D("0.3"))}

    budget.settle(first, D("0.1"))
    assert counters() == {"global:*:month:2026-11": (D("0.1"), 0)}

    second = budget.reserve(request_id="b", amount="0.5", user_id=7)
    budget.release(second)
    assert counters() == {"global:*:month:2026-11": (D("0.1"), 0)}
    assert BudgetCounter.objects.get().limit == 1


def test_a_refused_reservation_holds_nothing_and_names_the_limit():
    limit("user", "day", "1")
    limit("global", "month", "10")
    budget = DjangoBudget(clock=Clock(NOV_25))
    budget.reserve(request_id="a", amount=D("0.6"), user_id=7)

    with pytest.raises(BudgetExceededError) as info:
        budget.reserve(request_id="b", amount=D("0.6"), user_id=7)

    err = info.value
    assert (err.scope, err.scope_id, err.period) == ("user", "7", "day")
    assert (err.limit, err.used, err.requested) == (1, D("0.6"), D("0.6"))
    # the global counter (locked first: keys are sorted) was rolled back with the refusal
    assert counters() == {
        "global:*:month:2026-11": (0, D("0.6")),
        "user:7:day:2026-11-25": (0, D("0.6")),
    }


def test_a_reservation_that_fits_exactly_is_accepted():
    limit("user", "day", "0.3")
    budget = DjangoBudget(clock=Clock(NOV_25))
    held = [budget.reserve(request_id=str(i), amount=D("0.1"), user_id=1) for i in range(3)]
    with pytest.raises(BudgetExceededError):
        budget.reserve(request_id="x", amount=D("0.000001"), user_id=1)
    for reservation in held:
        budget.settle(reservation, D("0.1"))
    assert counters() == {"user:1:day:2026-11-25": (D("0.3"), 0)}
    with pytest.raises(BudgetExceededError):
        budget.reserve(request_id="y", amount=D("0.000001"), user_id=1)
    budget.reserve(request_id="z", amount=0, user_id=1)  # a free call still fits


# --- scopes and periods --------------------------------------------------------------------------


def test_user_tenant_and_global_limits_hold_their_own_members():
    limit("user", "day", "1")
    limit("tenant", "month", "1.5")
    limit("global", "day", "100")
    budget = DjangoBudget(clock=Clock(NOV_25))

    both = budget.reserve(request_id="a", amount=D("0.9"), user_id=1, tenant_id="acme")
    assert both.keys == (
        "global:*:day:2026-11-25",
        "tenant:acme:month:2026-11",
        "user:1:day:2026-11-25",
    )
    budget.reserve(request_id="b", amount=D("0.9"), user_id=2)  # no tenant: tenant limits skip
    with pytest.raises(BudgetExceededError) as info:  # user 2 has room, tenant acme has not
        budget.reserve(request_id="c", amount=D("0.9"), user_id=3, tenant_id="acme")
    assert (info.value.scope, info.value.scope_id) == ("tenant", "acme")
    anonymous = budget.reserve(request_id="d", amount=D("0.9"))
    assert anonymous.keys == ("global:*:day:2026-11-25",)
    assert counters()["global:*:day:2026-11-25"] == (0, D("2.7"))


def test_day_and_month_buckets_follow_the_clock():
    limit("user", "day", "1")
    limit("user", "month", "1.5")
    clock = Clock(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    budget = DjangoBudget(clock=clock)
    budget.settle(budget.reserve(request_id="a", amount=D("1"), user_id=7), D("1"))
    with pytest.raises(BudgetExceededError) as info:
        budget.reserve(request_id="b", amount=D("0.01"), user_id=7)
    assert info.value.period == "day"

    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)  # a new day and a new month
    budget.settle(budget.reserve(request_id="c", amount=D("1"), user_id=7), D("0.25"))
    with pytest.raises(BudgetExceededError) as info:
        budget.reserve(request_id="d", amount=D("0.8"), user_id=7)
    assert info.value.period == "day"
    budget.reserve(request_id="e", amount=D("0.75"), user_id=7)

    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # a new day, the same month
    with pytest.raises(BudgetExceededError) as info:
        budget.reserve(request_id="f", amount=D("0.75"), user_id=7)
    assert info.value.period == "month"
    assert info.value.used == 1

    assert counters() == {
        "user:7:day:2026-11-30": (D("1"), 0),
        "user:7:month:2026-11": (D("1"), 0),
        "user:7:day:2026-12-01": (D("0.25"), D("0.75")),
        "user:7:month:2026-12": (D("0.25"), D("0.75")),
    }


def test_a_member_limit_replaces_the_every_member_limit():
    limit("user", "day", "1")
    limit("user", "day", "5", scope_id="vip")
    budget = DjangoBudget(clock=Clock(NOV_25))
    budget.reserve(request_id="a", amount=D("3"), user_id="vip")
    with pytest.raises(BudgetExceededError) as info:
        budget.reserve(request_id="b", amount=D("3"), user_id="7")
    assert info.value.limit == 1


def test_global_limits_have_no_member():
    rule = BudgetRule(scope="global", period="day", amount=D(1), scope_id="x")
    with pytest.raises(ValidationError):
        rule.full_clean()
    rule = BudgetRule(scope="user", period="day", amount=D(1), scope_id="")
    rule.full_clean()
    rule.save()
    assert BudgetRule.objects.get().scope_id is None


# --- the limits cache ----------------------------------------------------------------------------


def test_own_saves_apply_at_once_other_changes_within_the_ttl():
    rule = limit("user", "day", "1")
    rule.is_active = False
    rule.save()
    budget = DjangoBudget(limits_ttl=0.3, clock=Clock(NOV_25))
    assert budget.reserve(request_id="a", amount=D("2"), user_id=1).keys == ()

    rule.is_active = True
    rule.save()  # this process: used by the next reservation
    with pytest.raises(BudgetExceededError):
        budget.reserve(request_id="b", amount=D("2"), user_id=1)

    BudgetRule.objects.filter(pk=rule.pk).update(amount=D("3"))  # as another process would
    time.sleep(0.35)
    budget.reserve(request_id="c", amount=D("2"), user_id=1)


def test_steady_state_reserve_and_settle_are_one_update_per_limit():
    limit("user", "day", "100")
    limit("global", "month", "100")
    budget = DjangoBudget(clock=Clock(NOV_25))
    budget.release(budget.reserve(request_id="warm", amount=D("1"), user_id=1))

    with CaptureQueriesContext(connection) as ctx:
        budget.settle(budget.reserve(request_id="a", amount=D("1"), user_id=1), D("0.5"))
    statements = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
    assert statements.count("UPDATE") == 4  # 2 limits x (reserve + settle)
    assert statements.count("INSERT") == statements.count("DELETE") == 1  # the lease, in and out
    assert "SELECT" not in statements

    BudgetRule.objects.all().delete()
    with CaptureQueriesContext(connection) as ctx:
        budget.reserve(request_id="b", amount=D("1"), user_id=1)  # reloads the (empty) limits
        budget.reserve(request_id="c", amount=D("1"), user_id=1)  # no limit applies: no query
    assert len(ctx.captured_queries) == 1


def test_reserve_and_settle_cost_the_same_with_50k_usage_rows():
    limit("user", "day", "1000")
    limit("global", "day", "1000")
    budget = DjangoBudget(clock=Clock(NOV_25), limits_ttl=3600)  # the insert takes seconds

    def one_call() -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            reservation = budget.reserve(request_id="r", amount=D("0.01"), user_id=1)
            budget.settle(reservation, D("0.005"))
        return [
            re.sub(r"'[^']*'(::\w+)?|\b\d[\d.]*\b", "?", q["sql"]) for q in ctx.captured_queries
        ]

    budget.release(budget.reserve(request_id="warm", amount=D("0.01"), user_id=1))
    empty = one_call()
    now = timezone.now()
    LLMUsage.objects.bulk_create(
        (LLMUsage(user_id="1", cost=D("0.001"), created_at=now) for _ in range(50_000)),
        batch_size=5_000,
    )
    assert LLMUsage.objects.count() == 50_000
    full = one_call()

    writes = [sql.split()[0] for sql in empty if sql.split()[0] in ("UPDATE", "INSERT", "DELETE")]
    assert writes == ["UPDATE", "UPDATE", "INSERT", "DELETE", "UPDATE", "UPDATE"]  # + the lease
    assert sum(sql.startswith("UPDATE") for sql in empty) == 4  # 2 limits x (reserve, settle)
    assert full == empty  # the same statements, none of them on the usage table
    assert not any(LLMUsage._meta.db_table in sql for sql in full)


# --- async: off the loop, cancellation ------------------------------------------------------------


async def test_async_methods_run_in_worker_threads_and_keep_the_loop_free(monkeypatch):
    await asyncio.to_thread(_committed, lambda: limit("user", "day", "1"))
    budget = DjangoBudget(clock=Clock(NOV_25))
    threads: list[str] = []
    real_hold = budget._hold

    def slow_hold(*args: Any) -> None:
        threads.append(threading.current_thread().name)
        time.sleep(0.3)  # a slow database
        real_hold(*args)

    monkeypatch.setattr(budget, "_hold", slow_hold)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    reservation = await budget.areserve(request_id="a", amount=D("0.4"), user_id=1, tenant_id=None)
    await budget.asettle(reservation, D("0.1"))
    task.cancel()

    assert ticks >= 10
    assert threads[0].startswith("creative-services-budget")
    assert await asyncio.to_thread(_committed, counters) == {"user:1:day:2026-11-25": (D("0.1"), 0)}


async def test_a_cancelled_reservation_is_given_back(monkeypatch):
    await asyncio.to_thread(_committed, lambda: limit("user", "day", "1"))
    budget = DjangoBudget(clock=Clock(NOV_25))
    real_hold = budget._hold
    monkeypatch.setattr(budget, "_hold", lambda *a: (time.sleep(0.2), real_hold(*a)))

    task = asyncio.create_task(
        budget.areserve(request_id="a", amount=D("0.4"), user_id=1, tenant_id=None)
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_committed, counters) == {"user:1:day:2026-11-25": (0, 0)}:
            break
        await asyncio.sleep(0.05)
    assert await asyncio.to_thread(_committed, counters) == {"user:1:day:2026-11-25": (0, 0)}


def _committed(work: Callable[[], Any]) -> Any:
    """Run ORM work in a helper thread and close its connection."""
    try:
        return work()
    finally:
        connections.close_all()


# --- through the client ---------------------------------------------------------------------------


CHILD = """
import sys, threading
import django
from django.conf import settings
from contrib.django import settings as test_settings
settings.configure(**{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()})
django.setup()
from creative_services import _litellm
from creative_services.adapters import DjangoBudget, DjangoLLMRegistry
from creative_services.contrib.django.budgets import stop_budget_workers
from creative_services.contrib.django.registry import stop_registry_watcher
from contrib.django.test_budgets import call_concurrently

registry = DjangoLLMRegistry()
registry.refresh()
_litellm.load()  # every call must reserve while the others still hold: no import on the way
print("READY", flush=True)
sys.stdin.readline()
outcomes = call_concurrently(registry, int(sys.argv[1]))
stop_budget_workers()
stop_registry_watcher()
print("DONE", *outcomes, flush=True)
"""


def call_concurrently(
    registry: Any, calls: int, ready: Callable[[], None] = lambda: None
) -> list[str]:
    """Make ``calls`` calls for user 7 at once from as many threads; each one's outcome."""
    client = DynamicLLMClient(registry, budget=DjangoBudget())
    start = threading.Barrier(calls + 1)
    outcomes: list[str] = []

    def call() -> None:
        start.wait()
        try:
            client.generate_sync(prompt=PROMPT, user_id=7)
            outcomes.append("ok")
        except BudgetExceededError:
            outcomes.append("refused")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=call) for _ in range(calls)]
    for thread in threads:
        thread.start()
    ready()
    start.wait()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_twenty_concurrent_calls_from_two_processes_only_five_fit(priced, fake_provider):
    """Done-when: 10 threads here and 10 in another OS process, a budget that fits exactly 5."""
    fake_provider.reply("ok", prompt_tokens=5, completion_tokens=1, delay=1.0, times=20)
    fits_five = worst_case() * 5
    limit("user", "day", str(fits_five))
    registry = DjangoLLMRegistry()
    registry.refresh()
    _litellm.load()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
        "CS_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), "10"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "READY"

        def go() -> None:
            child.stdin.write("go\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]

        here = call_concurrently(registry, 10, ready=go)
        word, *there = child.stdout.readline().split()
    finally:
        _, errors = child.communicate(timeout=60)
    assert child.returncode == 0, errors
    assert word == "DONE", errors
    assert sorted(here + there) == ["ok"] * 5 + ["refused"] * 15, (here, there)
    assert len(fake_provider.requests) == 5
    counter = BudgetCounter.objects.get()
    assert counter.spent == 5 * (D(5) * 1 + D(1) * 2) / 1000
    assert counter.spent <= fits_five
    assert counter.reserved == 0


def test_a_failed_call_releases_its_reservation(priced, fake_provider, fake_clock):
    fake_provider.fail(500, times=3)
    limit("global", "month", "10")
    client = DynamicLLMClient(
        DjangoLLMRegistry(), budget=DjangoBudget(), clock=fake_clock, sleep=fake_clock.sleep
    )
    with pytest.raises(ServiceUnavailableError):
        client.generate_sync(prompt=PROMPT)
    assert len(fake_provider.requests) == 3
    counter = BudgetCounter.objects.get()
    assert (counter.spent, counter.reserved) == (0, 0)


def test_refusal_comes_before_any_http_call(priced, fake_provider):
    limit("user", "day", str(worst_case() - D("0.000001")))
    client = DynamicLLMClient(DjangoLLMRegistry(), budget=DjangoBudget())
    with pytest.raises(BudgetExceededError):
        client.generate_sync(prompt=PROMPT, user_id=1)
    assert fake_provider.requests == []
    client.generate_sync(prompt=PROMPT, user_id=None)  # no user: no user limit
    assert len(fake_provider.requests) == 1


# --- admin ----------------------------------------------------------------------------------------


def test_limits_are_listed_and_edited_in_the_admin(admin_client):
    rule = limit("user", "day", "1")
    page = admin_client.get("/admin/creative_services/budgetrule/")
    assert page.status_code == 200
    assert "every user" in page.content.decode()

    response = admin_client.post(
        f"/admin/creative_services/budgetrule/{rule.pk}/change/",
        {"scope": "user", "scope_id": "42", "period": "month", "amount": "2.5", "note": "vip"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule.refresh_from_db()
    assert (rule.scope_id, rule.period, rule.amount, rule.is_active) == ("42", "month", 2.5, False)

    response = admin_client.post(
        "/admin/creative_services/budgetrule/add/",
        {"scope": "global", "scope_id": "7", "period": "day", "amount": "1", "is_active": "on"},
    )
    assert response.status_code == 200  # the form comes back with the error
    assert BudgetRule.objects.count() == 1


def test_counters_are_read_only_in_the_admin(admin_client):
    limit("user", "day", "1")
    DjangoBudget(clock=Clock(NOV_25)).reserve(request_id="a", amount=D("0.25"), user_id=7)
    counter = BudgetCounter.objects.get()

    page = admin_client.get("/admin/creative_services/budgetcounter/").content.decode()
    for text in ("2026-11-25", "0.2500000000", "1.0000000000", "0.7500000000"):
        assert text in page
    assert admin_client.get("/admin/creative_services/budgetcounter/add/").status_code == 403
    url = f"/admin/creative_services/budgetcounter/{counter.pk}/change/"
    assert admin_client.get(url).status_code == 200  # view only
    assert admin_client.post(url, {"spent": "0"}).status_code == 403
    assert BudgetCounter.objects.get().reserved == D("0.25")


def test_open_reservations_are_listed_read_only_in_the_admin(admin_client):
    limit("user", "day", "1")
    held = DjangoBudget(clock=Clock(NOV_25)).reserve(
        request_id="call-42", amount=D("0.25"), user_id=7, timeout=10
    )
    page = admin_client.get("/admin/creative_services/budgetlease/").content.decode()
    for text in ("call-42", "open", "0.2500000000"):
        assert text in page
    assert admin_client.get("/admin/creative_services/budgetlease/add/").status_code == 403
    DjangoBudget(clock=Clock(NOV_25)).release(held)
    assert (
        "call-42" not in admin_client.get("/admin/creative_services/budgetlease/").content.decode()
    )


# --- bad amounts and ids --------------------------------------------------------------------------


def test_an_overflowing_cost_is_refused_and_the_hold_released():
    limit("user", "day", "1")
    budget = DjangoBudget(clock=Clock(NOV_25))
    held = budget.reserve(request_id="a", amount=D("0.5"), user_id=7)
    with pytest.raises(InvalidRequestError, match="from 0 to 1000000"):
        budget.settle(held, D("1e300"))  # once a DataError from numeric(20, 10), hold kept
    assert counters() == {"user:7:day:2026-11-25": (0, 0)}
    assert not BudgetLease.objects.exists()
    with pytest.raises(InvalidRequestError):
        budget.reserve(request_id="b", amount=D("1e30"), user_id=7)


@pytest.mark.parametrize("bad", ["x" * 256, "a\x00b", "\ud800"])
def test_user_ids_the_counters_cannot_store_are_refused_before_any_query(bad):
    limit("user", "day", "1")
    budget = DjangoBudget(clock=Clock(NOV_25))
    with CaptureQueriesContext(connection) as ctx, pytest.raises(InvalidRequestError):
        budget.reserve(request_id="a", amount=D("0.1"), user_id=bad)
    assert ctx.captured_queries == []


# --- leases ---------------------------------------------------------------------------------------


def test_an_expired_lease_is_reclaimed_and_a_late_settle_counts_its_cost_once():
    limit("user", "day", "1")
    budget = DjangoBudget(clock=Clock(NOV_25), lease_margin=0)
    late = budget.reserve(request_id="slow", amount=D("0.6"), user_id=7, timeout=0.05)
    time.sleep(0.1)
    assert budget.reclaim() == 1
    assert counters() == {"user:7:day:2026-11-25": (0, 0)}
    assert BudgetLease.objects.get().reclaimed

    budget.settle(late, D("0.2"))  # the call did finish after all: its cost counts
    budget.settle(late, D("0.2"))  # a retried settle changes nothing
    assert counters() == {"user:7:day:2026-11-25": (D("0.2"), 0)}
    assert not BudgetLease.objects.exists()


def test_a_reservation_that_needs_the_room_reclaims_and_each_budget_sweeps(monkeypatch):
    from creative_services.contrib.django import budgets as module

    limit("user", "day", "1")
    budget = DjangoBudget(clock=Clock(NOV_25), lease_margin=0)
    budget.reserve(request_id="dead", amount=D("1"), user_id=7, timeout=0.05)
    time.sleep(0.1)
    budget.reserve(request_id="next", amount=D("1"), user_id=7)  # refused, reclaims, fits
    assert counters() == {"user:7:day:2026-11-25": (0, 1)}

    monkeypatch.setattr(module, "SWEEP_EVERY", 0.0)
    sweeper = DjangoBudget(clock=Clock(NOV_25), lease_margin=0)
    sweeper.reserve(request_id="dead-2", amount=D("0"), user_id=8, timeout=0.05)
    time.sleep(0.1)
    sweeper.reserve(request_id="other", amount=D("0"), user_id=9)  # fits; sweeps on the way
    assert BudgetLease.objects.filter(reclaimed=True).count() == 2
