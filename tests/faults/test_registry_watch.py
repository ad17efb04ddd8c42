"""Item 11: the Django registry watcher over a PostgreSQL that stalls (SIGSTOP), in child processes.

Every test runs against a throwaway PostgreSQL cluster started here (its own folder, port and
unprivileged user); the children are Django processes with the shipped defaults
(``CONN_MAX_AGE=0``), whose watcher reads the registry from that cluster.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._servers import OwnPostgres, have_postgres

pytestmark = pytest.mark.skipif(not have_postgres(), reason="initdb/pg_ctl are not installed")

TESTS_DIR = Path(__file__).resolve().parents[1]
QUERY_TIMEOUT = 1.0
"""The children's CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT (the default is 5 s)."""

CHILD = """
import json, logging, sys, time
import django
from django.conf import settings
from contrib.django import settings as test_settings
settings.configure(
    **{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()},
    CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT=float(sys.argv[3]),
)
django.setup()
logging.basicConfig(filename=sys.argv[2], level=logging.INFO, format="%(created).3f %(message)s")
from creative_services.adapters import DjangoLLMRegistry

if sys.argv[1] == "setup":
    from django.core.management import call_command
    from creative_services.contrib.django.models import LLMModel
    call_command("migrate", verbosity=0)
    for priority, name in enumerate("ab"):
        LLMModel.objects.create(name=name, provider="openai", model_name="gpt-4o-mini",
                                tier="standard", api_key="sk-not-used", priority=priority)
    sys.exit(0)

registry = DjangoLLMRegistry()
print("READY", registry.get_by_tier("standard").name, flush=True)
for line in sys.stdin:
    started = time.monotonic()
    if line.strip() == "used":
        answer = registry.get_by_tier("standard").name
    else:
        from django.core import checks
        answer = [[m.id, m.msg] for m in checks.run_checks() if m.id.endswith("W007")]
    print(json.dumps([answer, round(time.monotonic() - started, 3)]), flush=True)
"""


class Child:
    """A Django process watching the registry on ``pg``; answers ``used`` and ``check``."""

    def __init__(self, pg: OwnPostgres, log: Path, mode: str = "watch") -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
            "CS_TEST_DB": "postgres",
            "CS_TEST_DB_NAME": "cs",
            "CS_TEST_PG_PORT": str(pg.port),
            "CS_TEST_CHECK_INTERVAL": "0.2",
        }
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHILD), mode, str(log), str(QUERY_TIMEOUT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def line(self, timeout: float) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the child did not answer within {timeout} s") from None

    def ask(self, command: str, timeout: float = 30.0) -> tuple[Any, float]:
        """Send ``command``; its answer and how long the child took to compute it."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer, took = json.loads(self.line(timeout))
        return answer, float(took)

    def stale_lines(self) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line for line in text.splitlines() if "llm_registry_stale" in line]

    def close(self) -> str:
        with_stdin = self.process.stdin
        if with_stdin is not None and not with_stdin.closed:
            with_stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(20)
        self._reader.join(20)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.process.stdout.close()
        with self.process.stderr:
            return self.process.stderr.read()


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPostgres]:
    with OwnPostgres() as server:
        setup = Child(server, tmp_path_factory.mktemp("setup") / "log", mode="setup")
        errors = setup.close()
        assert setup.process.returncode == 0, errors
        yield server


@pytest.fixture
def admin(pg: OwnPostgres) -> Iterator[Any]:
    """The test's own connection, with both entries active again afterwards."""
    conn = pg.connect()
    yield conn
    conn.execute("UPDATE creative_services_llmmodel SET is_active = true")
    conn.close()


@pytest.fixture
def child(pg: OwnPostgres, tmp_path: Path) -> Iterator[Child]:
    started = Child(pg, tmp_path / "child.log")
    try:
        assert started.line(60).split() == ["READY", "a"]
        yield started
    finally:
        pg.resume()
        started.close()


def deactivate_a(admin: Any) -> None:
    admin.execute("UPDATE creative_services_llmmodel SET is_active = false WHERE name = 'a'")


def until_used(child: Child, name: str, limit: float) -> float:
    """Seconds until the child's lookups use ``name``; fails after ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        used, _ = child.ask("used")
        if used == name:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"the child still does not use {name!r} after {limit} s")


def client_sessions(admin: Any) -> set[tuple[int, Any]]:
    rows = admin.execute(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = 'cs' "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchall()
    return {(int(pid), start) for pid, start in rows}


def test_stalled_server_is_reported_stale_each_interval_and_checks_answer(pg, admin, child):
    pg.pause()
    stalled = time.monotonic()
    try:
        while time.monotonic() - stalled < 10.0:
            used, took = child.ask("used", timeout=10)
            assert (used, took < 1.0) == ("a", True)  # served from memory, never waits
            time.sleep(0.5)
        warnings, took = child.ask("check", timeout=10)
        lines = child.stale_lines()
    finally:
        pg.resume()
    print("W007 answered in (s):", took, "stale lines in a 10 s stall:", len(lines))
    assert took < 5.0
    assert [w[0] for w in warnings] == ["creative_services.W007"], warnings
    assert "stale for" in warnings[0][1]
    # Stale after 5 s, then one line each check interval (at least 1 s apart): ~5 in 10 s.
    assert len(lines) >= 3, lines
    deactivate_a(admin)
    print("deactivation used after (s):", round(until_used(child, "b", 20.0), 2))
    time.sleep(1.0)
    warnings, _ = child.ask("check")
    assert warnings == []  # fresh again


def test_stalled_watcher_session_reconnects_and_stops_using_a_deactivated_entry(pg, admin, child):
    time.sleep(1.0)  # a few checks: the watcher's session is there
    sessions = client_sessions(admin)
    assert len(sessions) == 1, sessions
    ((pid, start),) = sessions
    pg.pause([pid])  # that session's backend hangs; the server still answers others
    try:
        deactivate_a(admin)
        took = until_used(child, "b", 15.0)
    finally:
        pg.resume([pid])
    print("deactivation used after (s):", round(took, 2))
    # The resumed backend notices its client closed the socket when it next runs: under load
    # that is not instant, so wait for it (a session the watcher kept would stay for good).
    deadline = time.monotonic() + 10.0
    while (pid, start) in client_sessions(admin) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (pid, start) not in client_sessions(admin)


def test_idle_processes_keep_one_session_each(pg, admin, tmp_path):
    children = [Child(pg, tmp_path / f"idle{i}.log") for i in range(3)]
    try:
        for idle in children:
            assert idle.line(60).split() == ["READY", "a"]
        time.sleep(1.0)
        offset = pg.log_size()
        seen: set[tuple[int, Any]] = set()
        samples = []
        for _ in range(30):  # 3 s: 15 check intervals of each child
            now = client_sessions(admin)
            samples.append(len(now))
            seen |= now
            time.sleep(0.1)
        opened = pg.sessions_opened(offset)
    finally:
        for idle in children:
            idle.close()
    print("sessions opened in 3 s:", opened, "seen:", len(seen), "per sample:", samples)
    assert opened == 0
    assert len(seen) == 3
    assert set(samples) == {3}
