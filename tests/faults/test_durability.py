"""Item 9: usage records survive failing and slow trackers; nothing disappears silently.

The client makes exactly one record per call and never retries a tracker itself: retrying
transient storage errors is the tracker's job (DjangoUsageTracker retries OperationalError, see
tests/contrib/django/test_faults.py). What a tracker refuses is kept in
``client.failed_records`` and logged as ``usage_record_failed``.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from creative_services import AuthenticationError, InMemoryUsageTracker
from creative_services.types import UsageRecord

from ._helpers import KEY, entry, leaked, make_client


class FlakyTracker(InMemoryUsageTracker):
    """Fails its first ``failures`` writes with a transient-looking error."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def _store(self, record: UsageRecord) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"database went away (dsn=postgres://app:{KEY}@db)")
        super()._store(record)


async def test_transient_tracker_failure_is_dead_lettered_not_lost(
    fake_provider, fake_clock, caplog
):
    tracker = FlakyTracker(failures=1)
    client = make_client([entry(fake_provider)], fake_clock, tracker=tracker)
    with caplog.at_level(logging.DEBUG):
        first = await client.generate(prompt="hi")
        second = await client.generate(prompt="hi")
    assert first.content == second.content == "fake answer"
    assert [r.request_id for r in client.failed_records] == [first.request_id]
    assert [r.request_id for r in tracker.records] == [second.request_id]
    assert tracker.calls == 2  # one write per call: never a duplicate
    events = [r for r in caplog.records if "usage_record_failed" in r.getMessage()]
    assert len(events) == 1
    assert events[0].levelno == logging.ERROR
    assert first.request_id in events[0].getMessage()
    assert leaked(KEY, caplog.text) == []


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_permanent_tracker_failure_keeps_every_record_of_successes_and_errors(
    fake_provider, fake_clock, caplog, mode
):
    tracker = FlakyTracker(failures=10**6)
    fake_provider.fail(401, f"Incorrect API key provided: {KEY}")
    client = make_client([entry(fake_provider)], fake_clock, tracker=tracker)
    with caplog.at_level(logging.DEBUG):
        if mode == "async":
            with pytest.raises(AuthenticationError):
                await client.generate(prompt="hi")
            ok = await client.generate(prompt="hi")
        else:
            with pytest.raises(AuthenticationError):
                await asyncio.to_thread(client.generate_sync, prompt="hi")
            ok = await asyncio.to_thread(client.generate_sync, prompt="hi")
    kept = list(client.failed_records)
    assert [r.outcome for r in kept] == ["error", "success"]
    assert kept[1].request_id == ok.request_id
    assert kept[0].error_class == "AuthenticationError"
    events = [r for r in caplog.records if "usage_record_failed" in r.getMessage()]
    assert len(events) == 2
    assert leaked(KEY, caplog.text) == []
    assert leaked(KEY, repr(kept)) == []


class SlowTracker(InMemoryUsageTracker):
    """An async tracker whose write takes a while (a remote store)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.writes = 0

    async def arecord(self, **fields):  # type: ignore[no-untyped-def]
        self.started.set()
        await asyncio.sleep(0.2)
        self.writes += 1
        return self.record(**fields)


async def test_caller_cancelled_during_the_write_still_writes_once(fake_provider, fake_clock):
    tracker = SlowTracker()
    client = make_client([entry(fake_provider)], fake_clock, tracker=tracker)
    task = asyncio.create_task(client.generate(prompt="hi"))
    await asyncio.to_thread(tracker.started.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the write finishes on the library's loop
        if tracker.records:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert tracker.writes == 1
    assert len(tracker.records) == 1
    assert list(client.failed_records) == []


async def test_caller_cancelled_before_the_answer_leaves_exactly_one_record(
    fake_provider, fake_clock
):
    # Complements tests/test_client.py::test_cancelled_call_leaves_one_cancelled_record with a
    # tracker that is slow to write: the record is still written once, never twice.
    fake_provider.reply("slow", delay=0.5)
    tracker = SlowTracker()
    client = make_client([entry(fake_provider)], fake_clock, tracker=tracker)
    task = asyncio.create_task(client.generate(prompt="hi"))
    while not fake_provider.requests:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if tracker.records:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert tracker.writes == 1
    [record] = tracker.records
    assert record.outcome == "cancelled"
    assert record.may_have_been_billed
