"""Issue 14 item 6: a record that ``DjangoUsageTracker(batch=True).record()`` accepted is written,
exactly once, even when its process is killed (SIGKILL, SIGTERM) right after ``record()``
returned, or the database is down for seconds; a full spool refuses with a typed error.

Child processes record into a throwaway PostgreSQL cluster (``_servers.OwnPostgres``) or an
SQLite file; the machine's shared PostgreSQL is never touched, and only processes started here
are signalled. A second child with the same spool folder drains what the killed one left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._servers import OwnPostgres, free_port, have_postgres

TESTS_DIR = Path(__file__).resolve().parents[1]
TABLE = "creative_services_llmusage"

CHILD = """
import json, os, signal, sys, time
import django
from django.conf import settings
from contrib.django import settings as test_settings
base = {k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()}
settings.configure(**{**base, **json.loads(sys.argv[1])})
django.setup()
from creative_services.adapters import DjangoUsageTracker
from creative_services.exceptions import UsageSpoolFullError

signal.alarm(120)  # a hang fails the test instead of blocking it
task = json.loads(sys.argv[2])
op = task["op"]
if op == "migrate":
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
elif op == "record":  # then die by a signal right after the last record() returned
    tracker = DjangoUsageTracker(batch=True, batch_size=task["batch"], flush_interval=0.005)
    for i in range(task["n"]):
        tracker.record(llm_id=None, user_id="spool", request_id=f"r{i:06d}")
    os.kill(os.getpid(), getattr(signal, task["signal"]))
    time.sleep(30)
elif op == "drain":  # a new process on the same spool folder
    tracker = DjangoUsageTracker(batch=True)
    ok = tracker.flush(90)
    print(json.dumps({"ok": ok, "pending": tracker.pending, "failed": len(tracker.failed)}))
    tracker.close(5)
elif op == "outage":
    tracker = DjangoUsageTracker(batch=True, batch_size=50, flush_interval=0.02)
    for i in range(100):
        tracker.record(llm_id=None, user_id="before", request_id=f"b{i:06d}")
    assert tracker.flush(30)
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "down"
    for i in range(400):  # 2 s of records while the server is down
        tracker.record(llm_id=None, user_id="during", request_id=f"d{i:06d}")
        time.sleep(0.005)
    print(json.dumps({"pending": tracker.pending, "failed": len(tracker.failed)}), flush=True)
    assert sys.stdin.readline().strip() == "up"
    ok = tracker.flush(90)
    print(json.dumps({"ok": ok, "pending": tracker.pending, "failed": len(tracker.failed)}))
    tracker.close(5)
elif op == "full":
    tracker = DjangoUsageTracker(batch=True, retry_delay=0.5)
    accepted = 0
    try:
        for i in range(100_000):
            tracker.record(llm_id=None, request_id=f"f{i:06d}")
            accepted += 1
    except UsageSpoolFullError as exc:
        print(json.dumps({"accepted": accepted, "pending": tracker.pending,
                          "records": exc.records, "max_bytes": exc.max_bytes}), flush=True)
    os._exit(0)
"""


def run_child(overrides: dict[str, Any], task: dict[str, Any], **kwargs: Any) -> Any:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), json.dumps(overrides), json.dumps(task)],
        capture_output=True, text=True, env=env, timeout=180, check=False, **kwargs,
    )  # fmt: skip


def start_child(overrides: dict[str, Any], task: dict[str, Any]) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), json.dumps(overrides), json.dumps(task)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@contextlib.contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[tuple[dict[str, Any], Any]]:
    """Django settings for a fresh database of ``kind``, and a function counting its rows."""
    spool = str(tmp_path / "spool")
    if kind == "sqlite":
        path = tmp_path / "usage.sqlite3"
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path),
              "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}}  # fmt: skip

        def rows(where: str = "") -> tuple[int, int]:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                sql = f"SELECT count(*), count(DISTINCT request_id) FROM {TABLE} {where}"  # noqa: S608
                return tuple(conn.execute(sql).fetchone())  # type: ignore[return-value]

        yield {"DATABASES": {"default": db}, "CREATIVE_SERVICES_USAGE_SPOOL": spool}, rows
        return
    if not have_postgres():
        pytest.skip("initdb/pg_ctl are not installed")
    with OwnPostgres() as server:
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": "cs", "USER": "postgres",
              "HOST": "127.0.0.1", "PORT": str(server.port)}  # fmt: skip

        def rows(where: str = "") -> tuple[int, int]:
            with server.connect() as conn:
                sql = f"SELECT count(*), count(DISTINCT request_id) FROM {TABLE} {where}"  # noqa: S608
                return tuple(conn.execute(sql).fetchone())  # type: ignore[return-value]

        settings = {"DATABASES": {"default": db}, "CREATIVE_SERVICES_USAGE_SPOOL": spool}
        settings["server"] = server
        yield settings, rows


def migrated(settings: dict[str, Any]) -> dict[str, Any]:
    overrides = {k: v for k, v in settings.items() if k != "server"}
    result = run_child(overrides, {"op": "migrate"})
    assert result.returncode == 0, result.stderr
    return overrides


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
@pytest.mark.parametrize("signame", ["SIGKILL", "SIGTERM"])
def test_records_accepted_before_a_kill_are_written_once_by_the_next_process(
    kind: str, signame: str, tmp_path: Path
) -> None:
    n = 3000
    with database(kind, tmp_path) as (settings, rows):
        overrides = migrated(settings)
        killed = run_child(overrides, {"op": "record", "n": n, "batch": 200, "signal": signame})
        assert killed.returncode == -getattr(signal, signame), killed.stderr
        written_before = rows()[0]
        drained = run_child(overrides, {"op": "drain"})
        assert drained.returncode == 0, drained.stderr
        assert json.loads(drained.stdout) == {"ok": True, "pending": 0, "failed": 0}
        assert rows() == (n, n), f"{written_before} rows were written before the kill"
        assert not list((tmp_path / "spool").glob("*/*.spool"))  # drained files are removed


def test_an_outage_of_seconds_loses_nothing_and_fails_nothing(tmp_path: Path) -> None:
    with database("postgres", tmp_path) as (settings, rows):
        server = settings["server"]
        overrides = migrated(settings)
        with start_child(overrides, {"op": "outage"}) as child:
            assert child.stdin is not None
            assert child.stdout is not None
            try:
                assert child.stdout.readline().strip() == "ready"
                with server.down():
                    child.stdin.write("down\n")
                    child.stdin.flush()
                    during = json.loads(child.stdout.readline())
                    time.sleep(3)  # the server stays down: about 5 s in all
                child.stdin.write("up\n")
                child.stdin.flush()
                after = json.loads(child.stdout.readline())
            finally:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(60)
                if child.poll() is None:
                    child.kill()
        assert during["pending"] > 0  # the records waited in the spool, none in failed
        assert during["failed"] == 0
        assert after == {"ok": True, "pending": 0, "failed": 0}
        assert rows() == (500, 500)


def test_a_full_spool_refuses_with_a_typed_error(tmp_path: Path) -> None:
    down = {
        "ENGINE": "django.db.backends.postgresql", "NAME": "cs", "USER": "postgres",
        "HOST": "127.0.0.1", "PORT": str(free_port()), "OPTIONS": {"connect_timeout": 1},
    }  # fmt: skip
    overrides = {
        "DATABASES": {"default": down},
        "CREATIVE_SERVICES_USAGE_SPOOL": str(tmp_path / "spool"),
        "CREATIVE_SERVICES_USAGE_SPOOL_MAX_BYTES": 64 * 1024,
    }
    result = run_child(overrides, {"op": "full"})
    assert result.returncode == 0, result.stderr
    full = json.loads(result.stdout)
    assert full["max_bytes"] == 64 * 1024
    assert 100 < full["accepted"] == full["pending"] == full["records"] < 2000
    [spool] = (tmp_path / "spool").glob("*/*.spool")  # kept for the next process to drain
    from creative_services.contrib.django._spool import spool_files

    assert spool_files(tmp_path / "spool") == [(spool, full["accepted"], False)]
