"""Item 5 (and the budget part of item 3): DjangoBudget when processes die and PostgreSQL fails.

Every test runs a throwaway PostgreSQL cluster of its own (``_servers.OwnPostgres``: its own
folder, port and unprivileged user) and Django child processes that budget on it; the machine's
shared PostgreSQL is never touched, and only processes started here are signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creative_services.testing.fake_provider import FakeProvider

from ._servers import OwnPostgres, have_postgres, paused

pytestmark = pytest.mark.skipif(not have_postgres(), reason="initdb/pg_ctl are not installed")

TESTS_DIR = Path(__file__).resolve().parents[1]
D = Decimal

CHILD = """
import asyncio, json, sys, time
import django
from django.conf import settings
from contrib.django import settings as test_settings
overrides = json.loads(sys.argv[1])
settings.configure(
    **{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()}, **overrides
)
django.setup()
from decimal import Decimal
from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, LLMEntry
from creative_services.adapters import DjangoBudget
from creative_services.contrib.django.budgets import pending_settles
from creative_services.contrib.django.models import BudgetCounter, BudgetLease, BudgetRule

budget = DjangoBudget()
held = []
loop = asyncio.new_event_loop()


def answer(**fields):
    print(json.dumps(fields), flush=True)


def run(command):
    op = command["op"]
    if op == "setup":
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        BudgetRule.objects.create(scope="user", period="day", amount=Decimal(command["limit"]))
        return {}
    if op == "reserve":
        reservation = loop.run_until_complete(budget.areserve(
            request_id=command.get("id", "r"), amount=Decimal(command["amount"]), user_id=7,
            tenant_id=None, timeout=command.get("timeout")))
        held.append(reservation)
        return {"index": len(held) - 1, "keys": list(reservation.keys)}
    if op == "settle":
        loop.run_until_complete(budget.asettle(held[command["index"]], Decimal(command["cost"])))
        return {}
    if op == "generate":
        entry = LLMEntry(name="priced", provider="openai", model_name="gpt-4o-mini",
                         api_key="sk-not-used", api_endpoint=command["url"], max_tokens=100,
                         cost_per_1k_input="1", cost_per_1k_output="2")
        client = DynamicLLMClient(DictRegistry([entry]), budget=budget,
                                  tracker=InMemoryUsageTracker())
        response = client.generate_sync(prompt="hi", user_id=7, timeout=command["timeout"])
        return {"content": response.content, "cost": str(response.cost)}
    if op == "pending":
        return {"pending": pending_settles()}
    if op == "books":
        from django.db import connections
        connections.close_all()  # this thread's session may predate a restart of the server
        counters = [[str(c.spent), str(c.reserved)] for c in BudgetCounter.objects.all()]
        leases = BudgetLease.objects.filter(reclaimed=False).count()
        return {"counters": counters, "open_leases": leases}
    raise ValueError(op)


answer(ready=True)
for line in sys.stdin:
    command = json.loads(line)
    started = time.monotonic()
    try:
        result = run(command)
    except Exception as exc:
        result = {"error": type(exc).__name__, "message": str(exc)}
    answer(took=round(time.monotonic() - started, 3), **result)
"""


class Child:
    """A Django process budgeting on ``pg``; answers one JSON line per command."""

    def __init__(self, pg: OwnPostgres, **settings: Any) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
            "CS_TEST_DB": "postgres",
            "CS_TEST_DB_NAME": "cs",
            "CS_TEST_PG_PORT": str(pg.port),
        }
        overrides = {f"CREATIVE_SERVICES_{k.upper()}": v for k, v in settings.items()}
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHILD), json.dumps(overrides)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._next(60) == {"ready": True}

    def _read(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed by close()
            for line in self.process.stdout:
                self._lines.put(line)

    def _next(self, timeout: float) -> Any:
        try:
            return json.loads(self._lines.get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(f"no answer within {timeout} s") from None

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def ask(self, **command: Any) -> Any:
        self.send(**command)
        return self._next(60.0)

    def answer(self) -> Any:
        return self._next(60.0)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@pytest.fixture
def pg() -> Iterator[OwnPostgres]:
    with OwnPostgres() as server:
        yield server


@pytest.fixture
def children(pg: OwnPostgres) -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.close()


def start(children: list[Child], pg: OwnPostgres, **settings: Any) -> Child:
    child = Child(pg, **settings)
    children.append(child)
    return child


def books(child: Child) -> tuple[list[list[str]], int]:
    found = child.ask(op="books")
    return [[str(D(a).normalize()), str(D(b).normalize())] for a, b in found["counters"]], found[
        "open_leases"
    ]


def test_a_killed_processs_reservations_are_reclaimed_by_the_next_that_needs_them(pg, children):
    """SIGKILL with 4 reservations held (the limit full); then 4 processes race for the room:
    exactly 4 of their 8 reservations fit, and the books end exact."""
    setup = start(children, pg, budget_lease_margin=0.5)
    assert "error" not in setup.ask(op="setup", limit="4")
    victim = start(children, pg, budget_lease_margin=0.5)
    for i in range(4):
        assert "index" in victim.ask(op="reserve", amount="1", timeout=0.5, id=f"v{i}")
    assert victim.ask(op="reserve", amount="1", timeout=0.5)["error"] == "BudgetExceededError"
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(20)
    assert books(setup) == ([["0", "4"]], 4)  # the dead process still holds everything

    time.sleep(1.2)  # its leases expire: their 0.5 s deadline plus the 0.5 s margin
    racers = [start(children, pg) for _ in range(4)]
    for racer in racers:  # all at once: each sends two reservations before any answer is read
        racer.send(op="reserve", amount="1", timeout=30)
        racer.send(op="reserve", amount="1", timeout=30)
    outcomes = sorted(
        "ok" if "index" in answer else answer["error"]
        for racer in racers
        for answer in (racer.answer(), racer.answer())
    )
    assert outcomes == ["BudgetExceededError"] * 4 + ["ok"] * 4, (outcomes, books(setup))
    assert books(setup) == ([["0", "4"]], 4)  # 4 held by the racers, the dead ones reclaimed

    settled = [(racer, i) for racer in racers for i in (0, 1)]
    for racer, index in settled:
        result = racer.ask(op="settle", index=index, cost="0.25")
        assert "error" not in result or result["error"] == "IndexError"
    assert books(setup) == ([["1", "0"]], 0)


def test_a_settle_during_an_outage_is_retried_until_applied(pg, children):
    child = start(children, pg)
    child.ask(op="setup", limit="10")
    assert "index" in child.ask(op="reserve", amount="2", timeout=30)
    with pg.down():
        result = child.ask(op="settle", index=0, cost="0.5")
        assert result["error"] == "BudgetUnavailableError", result  # not OperationalError
        assert "retried in the background" in result["message"]
        assert result["took"] < 2.5
        assert child.ask(op="pending") == {"pending": 1, "took": pytest.approx(0, abs=1)}
        refused = child.ask(op="reserve", amount="1", timeout=30)
        assert refused["error"] == "BudgetUnavailableError"  # closed: no call runs unbudgeted
        assert "fails closed" in refused["message"]
        assert refused["took"] < 2.5
    deadline = time.monotonic() + 30
    while child.ask(op="pending")["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert child.ask(op="pending")["pending"] == 0
    assert books(child) == ([["0.5", "0"]], 0)  # applied once, the hold given back


def test_fail_open_lets_calls_run_when_the_database_is_down(pg, children):
    child = start(children, pg, budget_fail_open=True)
    child.ask(op="setup", limit="10")
    with pg.down():
        result = child.ask(op="reserve", amount="1", timeout=30)
    assert result["keys"] == []  # unbudgeted: nothing held, nothing to settle
    assert result["took"] < 2.5


def generate_while_hung(child: Child, pg: OwnPostgres, fake: FakeProvider, timeout: float) -> Any:
    """A call that books normally, then one with ``pg`` stopped (SIGSTOP): the second's answer."""
    fake.reply("ok", prompt_tokens=5, completion_tokens=1)
    assert child.ask(op="generate", url=fake.base_url, timeout=timeout)["content"] == "ok"
    with paused(pg):
        return child.ask(op="generate", url=fake.base_url, timeout=timeout)


def test_a_hung_database_answers_within_the_calls_deadline(pg, children):
    """Item 3: PostgreSQL stopped (SIGSTOP) under a call with timeout=3: a typed error in time."""
    child = start(children, pg)
    child.ask(op="setup", limit="10")
    with FakeProvider() as fake:
        result = generate_while_hung(child, pg, fake, timeout=3)
        assert result["error"] == "BudgetUnavailableError", result
        assert result["took"] < 3.5, result
        assert len(fake.requests) == 1  # refused before any request
        # a hang during the settle: the caller keeps its answer, the settle lands afterwards
        time.sleep(1.2)  # after a timeout the budget fails at once for a second: not this test
        fake.reply("late", prompt_tokens=5, completion_tokens=1, delay=1.0)
        child.send(op="generate", url=fake.base_url, timeout=3)
        time.sleep(0.6)
        with paused(pg):
            result = child.answer()
        assert result["content"] == "late", result
        assert result["took"] < 3.5, result
    deadline = time.monotonic() + 30
    while child.ask(op="pending")["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    (spent, reserved), *_ = books(child)[0]
    assert (D(spent), D(reserved)) == (2 * (D(5) * 1 + D(1) * 2) / 1000, 0)


def test_a_short_deadline_bounds_the_budgets_wait_and_its_lease(pg, children):
    """Item 3: the call's remaining deadline reaches DjangoBudget: with timeout=1 a hung database
    is a typed error within the second (the budget's own bound is 2 s), and the lease a call
    holds expires at its deadline plus the margin, not at 60 s."""
    child = start(children, pg, budget_lease_margin=5)
    child.ask(op="setup", limit="10")
    with FakeProvider() as fake:
        result = generate_while_hung(child, pg, fake, timeout=1)
        assert result["error"] == "BudgetUnavailableError", result
        assert result["took"] < 1.5, result
        time.sleep(1.2)  # after a timeout the budget fails at once for a second
        fake.reply("slow", prompt_tokens=5, completion_tokens=1, delay=1.5)
        child.send(op="generate", url=fake.base_url, timeout=3)
        time.sleep(0.8)  # the reservation is held while the provider thinks
        with pg.connect() as conn:
            (held,) = conn.execute(
                "SELECT EXTRACT(EPOCH FROM expires_at - created_at)"
                " FROM creative_services_budgetlease WHERE NOT reclaimed"
            ).fetchall()
        assert child.answer()["content"] == "slow"
    assert 7.0 < float(held[0]) <= 8.0  # what was left of timeout=3, plus the 5 s margin
