"""DjangoUsageTracker: exact decimals, on-commit writes, off-loop async, retries, batches."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction

from creative_services import DynamicLLMClient, InvalidRequestError
from creative_services.adapters import DjangoLLMRegistry, DjangoUsageTracker
from creative_services.contrib.django.models import LLMUsage

pytestmark = pytest.mark.django_db(transaction=True)


def count_rows() -> int:
    """Count in a worker thread and close its connection (PostgreSQL drops the DB at the end)."""
    try:
        return int(LLMUsage.objects.count())
    finally:
        connections.close_all()


def test_seed_record_call_stores_exact_decimal():
    DjangoUsageTracker().record(
        llm_id=1, user_id=7, prompt_tokens=100, completion_tokens=500, cost=0.001
    )

    row = LLMUsage.objects.get()
    assert row.cost == Decimal("0.001")
    assert (row.user_id, row.prompt_tokens, row.completion_tokens) == ("7", 100, 500)
    assert row.llm_id == 1
    assert row.llm_ref == 1
    assert row.total_tokens == 600


def test_the_longest_user_id_and_json_metadata_are_stored_as_given():
    user, metadata = "u" * 255, {"path": "/ä/💥", "n": 1.5, "tags": ["a", None], "ok": True}
    DjangoUsageTracker().record(llm_id=1, user_id=user, metadata=metadata)
    row = LLMUsage.objects.get()
    assert (row.user_id, row.metadata) == (user, metadata)


@pytest.mark.parametrize(
    "fields",
    [
        {"metadata": {"score": float("nan")}},
        {"metadata": {"note": "a\x00b"}},  # PostgreSQL jsonb refuses \u0000
        {"metadata": {"when": object()}},
        {"user_id": "u" * 256},
        {"user_id": "a\x00b"},
        {"user_id": "\ud800"},
    ],
    ids=repr,
)
def test_what_the_table_cannot_hold_is_refused_not_lost(fields):
    # These rows used to fail at INSERT (DataError, ValueError) or were silently not written.
    with pytest.raises(InvalidRequestError):
        DjangoUsageTracker().record(llm_id=1, **fields)
    assert not LLMUsage.objects.exists()


@pytest.mark.parametrize(
    ("cost", "expected"),
    [(0.000123, "0.000123"), (1e-07, "0.0000001"), ("0.0042", "0.0042"), (Decimal("1.5"), "1.5")],
)
def test_cost_is_stored_as_the_decimal_the_caller_meant(cost, expected):
    DjangoUsageTracker().record(llm_id=None, cost=cost)
    assert LLMUsage.objects.get().cost == Decimal(expected)


def test_seed_record_call_on_legacy_model_fills_the_snapshot(make_legacy, legacy_model):
    row = make_legacy("old-one")
    DjangoLLMRegistry().list_active()  # the tracker copies names from a loaded snapshot only

    DjangoUsageTracker().record(
        llm_id=row.pk, user_id=7, prompt_tokens=100, completion_tokens=500, cost=0.001
    )

    usage = LLMUsage.objects.get()
    assert usage.llm_id is None
    assert usage.llm_ref == row.pk
    assert (usage.entry_name, usage.provider, usage.model, usage.tier) == (
        "old-one", "openai", "gpt-4o-mini", "standard"
    )  # fmt: skip


def test_inside_atomic_the_row_is_written_on_commit_only():
    tracker = DjangoUsageTracker()
    with transaction.atomic():
        tracker.record(llm_id=1, cost="0.5")
        assert not LLMUsage.objects.exists()
    assert LLMUsage.objects.count() == 1

    def rolled_back() -> None:
        with transaction.atomic():
            tracker.record(llm_id=2, cost="0.5")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert list(LLMUsage.objects.values_list("llm_ref", flat=True)) == [1]


async def test_arecord_writes_in_a_worker_thread_and_keeps_the_loop_free(monkeypatch):
    tracker = DjangoUsageTracker()
    threads: list[str] = []
    real_write = tracker._write

    def slow_write(records: Any, **kw: Any) -> None:
        threads.append(threading.current_thread().name)
        threading.Event().wait(0.3)  # a slow database
        real_write(records, **kw)

    monkeypatch.setattr(tracker, "_write", slow_write)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    record = await tracker.arecord(llm_id=3, user_id="u", cost=Decimal("0.25"))
    task.cancel()

    assert ticks >= 10  # the loop kept running during the 0.3 s write
    assert threads[0].startswith("creative-services-usage")
    assert record.cost == Decimal("0.25")
    assert await asyncio.to_thread(count_rows) == 1


async def test_sync_record_from_async_code_does_not_raise_synchronous_only():
    DjangoUsageTracker().record(llm_id=4)
    assert await asyncio.to_thread(count_rows) == 1


def test_transient_errors_are_retried(monkeypatch):
    real_save = LLMUsage.save
    failures = iter([OperationalError("server closed the connection"), None])

    def flaky_save(self: Any, *args: Any, **kwargs: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(LLMUsage, "save", flaky_save)
    tracker = DjangoUsageTracker(retry_delay=0.001)
    tracker.record(llm_id=5)

    assert LLMUsage.objects.count() == 1
    assert not tracker.failed


def test_lasting_failure_is_logged_kept_and_raised_then_retried(monkeypatch, caplog):
    real_save = LLMUsage.save

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OperationalError("database is down")

    monkeypatch.setattr(LLMUsage, "save", broken)
    tracker = DjangoUsageTracker(retries=2, retry_delay=0.001)
    with (
        caplog.at_level(logging.ERROR, logger="creative_services"),
        pytest.raises(OperationalError),
    ):
        tracker.record(llm_id=6, cost="0.01")

    assert [r.llm_id for r in tracker.failed] == [6]
    assert "usage_record_failed" in caplog.text
    monkeypatch.setattr(LLMUsage, "save", real_save)
    assert tracker.retry_failed() == 0
    assert LLMUsage.objects.get().llm_ref == 6


def test_failure_after_commit_is_kept_not_raised(monkeypatch):
    monkeypatch.setattr(LLMUsage, "save", lambda *a, **k: (_ for _ in ()).throw(ValueError("x")))
    tracker = DjangoUsageTracker(retries=0)
    with transaction.atomic():
        tracker.record(llm_id=8)
    assert [r.llm_id for r in tracker.failed] == [8]


def test_batch_mode_queues_and_flushes_with_bulk_create():
    tracker = DjangoUsageTracker(batch=True, batch_size=100, flush_interval=5.0)
    try:
        for i in range(250):
            tracker.record(llm_id=i, user_id=i % 3, cost="0.001")
        assert tracker.flush(timeout=30)
        assert LLMUsage.objects.count() == 250
        assert sum(LLMUsage.objects.values_list("cost", flat=True)) == Decimal("0.25")
    finally:
        tracker.close()
    assert tracker._writer is not None
    assert not tracker._writer.is_alive()


def test_batch_mode_isolates_a_bad_record():
    tracker = DjangoUsageTracker(batch=True, retries=0)
    try:
        tracker.record(llm_id=1)
        tracker.record(llm_id=2, entry_name="x" * 500)  # longer than the column
        tracker.record(llm_id=3)
        assert tracker.flush(timeout=30)
    finally:
        tracker.close()
    stored = sorted(LLMUsage.objects.values_list("llm_ref", flat=True))
    from django.db import connection

    if connection.vendor == "sqlite":  # SQLite does not enforce lengths
        assert stored == [1, 2, 3]
    else:
        assert stored == [1, 3]
        assert [r.llm_id for r in tracker.failed] == [2]


def test_client_writes_one_row_per_call_with_price(make_llm, fake_provider):
    entry = make_llm()
    fake_provider.reply("ok", prompt_tokens=1000, completion_tokens=1000)
    client = DynamicLLMClient(DjangoLLMRegistry(), tracker=DjangoUsageTracker())

    response = client.generate_sync(prompt="hi", tier="standard", user_id=42)

    row = LLMUsage.objects.get()
    assert row.llm_id == entry.pk
    assert row.entry_name == "primary"
    assert row.cost == response.cost == Decimal("0.00075")
    assert (row.cost_source, row.outcome, row.user_id) == ("entry", "success", "42")
    assert row.request_id == response.request_id


def test_generate_sync_inside_atomic_writes_its_row_when_the_caller_commits(
    make_llm, fake_provider
):
    make_llm()
    client = DynamicLLMClient(DjangoLLMRegistry(), tracker=DjangoUsageTracker())
    with transaction.atomic():
        client.generate_sync(prompt="hi", tier="standard")
        # not committed yet: another connection (a worker thread) sees no row
        seen: list[int] = []
        worker = threading.Thread(target=lambda: seen.append(count_rows()))
        worker.start()
        worker.join(10)
        assert seen == [0]
    assert LLMUsage.objects.count() == 1


def test_batched_rows_equal_rows_written_one_by_one():
    """The batch path (COPY on PostgreSQL, bulk_create elsewhere) stores what save() stores."""
    import datetime as dt

    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    odd = {
        "llm_id": 3, "user_id": "ü\tser\\n", "prompt_tokens": 1, "completion_tokens": 2,
        "reasoning_tokens": 3, "cached_tokens": 4, "cost": "0.0000001234", "cost_source": "entry",
        "tier": "premium", "entry_name": 'we"ird\\name\r\n', "provider": "openai", "model": "m",
        "latency_ms": 12.5, "outcome": "error", "error_class": "RateLimitError", "attempts": 3,
        "usage_estimated": True, "may_have_been_billed": True, "request_id": "abc",
        "metadata": {"k": ["v", 1, None, 2.5], "ü": "\n\t\\", "nested": {"a": True}},
        "created_at": at,
    }  # fmt: skip
    plain = {"llm_id": None, "user_id": None, "cost": None, "created_at": at}
    single = DjangoUsageTracker()
    for fields in (odd, plain):
        single.record(**{**fields, "request_id": "single"})
    batched = DjangoUsageTracker(batch=True, flush_interval=5.0)
    try:
        for fields in (odd, plain):
            batched.record(**{**fields, "request_id": "batched"})
        assert batched.flush(timeout=30)
    finally:
        batched.close()

    def rows(request_id: str) -> list[dict[str, Any]]:
        values = LLMUsage.objects.filter(request_id=request_id).order_by("id").values()
        return [{k: v for k, v in row.items() if k not in ("id", "request_id")} for row in values]

    assert rows("batched") == rows("single")
    assert len(rows("batched")) == 2
    assert not batched.failed


def test_flush_after_close_restarts_the_writer():
    tracker = DjangoUsageTracker(batch=True, flush_interval=5.0)
    tracker.record(llm_id=1)
    tracker.close()
    tracker.record(llm_id=2)
    assert tracker.flush(timeout=30)
    tracker.close()
    assert sorted(LLMUsage.objects.values_list("llm_ref", flat=True)) == [1, 2]
    assert tracker.flush(timeout=0)  # nothing queued: returns at once


FORK_CHILD = """
import asyncio, os, signal
import django
from django.conf import settings
from contrib.django import settings as test_settings
settings.configure(**{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()})
django.setup()
from django.db import connections
from creative_services.adapters import DjangoUsageTracker

signal.alarm(60)  # a hang fails the test instead of blocking it
direct = DjangoUsageTracker()
batch = DjangoUsageTracker(batch=True, flush_interval=3600)
direct.record(llm_id=None, user_id="parent-sync")
asyncio.run(direct.arecord(llm_id=None, user_id="parent-async"))  # starts the worker pool
batch.record(llm_id=None, user_id="parent-batch")  # starts the writer; still queued at the fork
connections.close_all()  # as gunicorn --preload should: no socket shared with the child
pid = os.fork()
if pid == 0:
    signal.alarm(30)
    try:
        direct.record(llm_id=None, user_id="child-sync")
        asyncio.run(direct.arecord(llm_id=None, user_id="child-async"))
        batch.record(llm_id=None, user_id="child-batch")
        asyncio.run(batch.arecord(llm_id=None, user_id="child-batch-async"))
        assert batch.flush(20), "child flush timed out"
        batch.close(5)
        connections.close_all()
    except BaseException as exc:
        print("child failed", repr(exc), flush=True)
        os._exit(1)
    print("child done", flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
assert batch.flush(20), "parent flush timed out"
batch.close(5)
connections.close_all()
print("parent done", flush=True)
"""


def test_forked_child_records_sync_async_and_batch_exactly_once():
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")]),
        "CS_TEST_DB_NAME": str(connections["default"].settings_dict["NAME"]),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORK_CHILD)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["child done", "child exit 0", "parent done"]
    users = sorted(LLMUsage.objects.values_list("user_id", flat=True))
    parent = ["parent-sync", "parent-async", "parent-batch"]
    child = ["child-sync", "child-async", "child-batch", "child-batch-async"]
    assert users == sorted([*parent, *child])
