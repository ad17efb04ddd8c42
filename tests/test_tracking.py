"""Trackers: the seed's record() signature, totals, and SQLite across threads and processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from decimal import Decimal

from creative_services import InMemoryUsageTracker, SQLiteUsageTracker, UsageTracker


def test_seed_record_signature_and_totals():
    tracker = InMemoryUsageTracker()
    assert isinstance(tracker, UsageTracker)
    tracker.record(llm_id=1, user_id=7, prompt_tokens=100, completion_tokens=500, cost=0.001)
    tracker.record(
        llm_id=2, user_id=7, prompt_tokens=10, completion_tokens=5, cost=None, tier="premium"
    )
    tracker.record(
        llm_id=1, user_id=8, prompt_tokens=1, completion_tokens=1, cost="0.5", outcome="error"
    )
    assert tracker.by_user[7].calls == 2
    assert tracker.by_user[7].cost == Decimal("0.001")
    assert tracker.by_user[7].unpriced == 1
    assert tracker.by_entry[1].total_tokens == 602
    assert tracker.by_tier["premium"].calls == 1
    assert (tracker.total.calls, tracker.total.failures) == (3, 1)


def test_memory_tracker_keeps_bounded_recent_records_and_all_time_totals():
    tracker = InMemoryUsageTracker(max_records=10)
    for _ in range(25):
        tracker.record(llm_id=1, prompt_tokens=1)
    assert len(tracker.records) == 10
    assert tracker.total.calls == 25


async def test_sqlite_tracker_round_trips_decimal_and_metadata(tmp_path):
    tracker = SQLiteUsageTracker(tmp_path / "usage.db")
    await tracker.arecord(
        llm_id=3,
        user_id="u1",
        prompt_tokens=12,
        completion_tokens=4,
        cost=Decimal("0.000123456789"),
        cost_source="litellm",
        metadata={"feature": "summary"},
    )
    [row] = tracker.rows()
    assert Decimal(row["cost"]) == Decimal("0.000123456789")
    assert (row["llm_id"], row["user_id"], row["metadata"]) == (3, "u1", '{"feature": "summary"}')
    tracker.close()


def test_sqlite_tracker_is_safe_from_threads_and_processes(tmp_path):
    path = tmp_path / "usage.db"
    tracker = SQLiteUsageTracker(path)

    def write() -> None:
        for _ in range(50):
            tracker.record(llm_id=1, prompt_tokens=1, completion_tokens=1)

    threads = [threading.Thread(target=write) for _ in range(4)]
    code = (
        "import sys; from creative_services import SQLiteUsageTracker; "
        "t = SQLiteUsageTracker(sys.argv[1]); [t.record(llm_id=2) for _ in range(100)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(60) == 0 for p in procs)
    rows = tracker.rows()
    assert len(rows) == 400
    assert sum(r["llm_id"] == 2 for r in rows) == 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_path_honours_env(tmp_path, monkeypatch):
    from creative_services.tracking import default_usage_db_path

    monkeypatch.setenv("CREATIVE_SERVICES_USAGE_DB", str(tmp_path / "x.db"))
    assert default_usage_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("CREATIVE_SERVICES_USAGE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_usage_db_path() == tmp_path / "creative-services" / "usage.sqlite3"
