"""``DjangoUsageTracker`` into PostgreSQL: sustained records/s in batch mode, caller-side cost.

Run (PostgreSQL on 127.0.0.1:5432, database ``test`` reachable as user ``postgres``)::

    uv run python bench/bench_django_tracker.py [--records N] [--rounds R] [--unbatched N]

The benchmark creates its own database (``bench_creative_services_<pid>``, via Django's test
database machinery), migrates it, and drops it at the end, so nothing it writes is left behind;
between rounds the usage table is emptied as well.

* **batched, sustained**: one thread calls ``record()`` ``N`` times as fast as it can on a
  ``DjangoUsageTracker(batch=True)``, timing each call (``perf_counter_ns``), then ``flush()``.
  Rate = ``N`` / (time from the first ``record()`` until ``flush()`` returned), that is rows
  committed to PostgreSQL per second while the caller and the background writer share one
  process. The row count is checked afterwards (nothing lost).
* **unbatched**: ``record()`` on ``DjangoUsageTracker()`` (one ``INSERT`` per call, autocommit),
  for comparison.

Each record carries what ``DynamicLLMClient`` records for a call (ids, tokens, a float cost,
names, latency, request id, metadata). Results are printed, plus a Markdown block for
bench/RESULTS.md with ``--markdown``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPOOL_DIR = tempfile.mkdtemp(prefix="cs-bench-spool-")
TARGET_RATE = 10_000.0
TARGET_P99_US = 100.0


def setup_django() -> None:
    """Configure Django for a throwaway PostgreSQL database and create it."""
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": os.environ.get("CS_BENCH_PG_DB", "test"),
                "USER": os.environ.get("CS_TEST_PG_USER", "postgres"),
                "HOST": os.environ.get("CS_TEST_PG_HOST", "127.0.0.1"),
                "PORT": os.environ.get("CS_TEST_PG_PORT", "5432"),
                "TEST": {"NAME": f"bench_creative_services_{os.getpid()}"},
            }
        },
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "creative_services.contrib.django",
        ],
        SECRET_KEY="bench-only",
        # the batched tracker's spool: its own folder, removed at the end
        CREATIVE_SERVICES_USAGE_SPOOL=SPOOL_DIR,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()


def fields(i: int) -> dict[str, Any]:
    """One call's record, shaped like the client's."""
    return {
        "llm_id": 1 + i % 3,
        "user_id": i % 97,
        "prompt_tokens": 100 + i % 50,
        "completion_tokens": 500,
        "cost": 0.000123,
        "cost_source": "entry",
        "tier": "standard",
        "entry_name": "primary",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "latency_ms": 812.5,
        "attempts": 1,
        "request_id": f"{i:032x}",
        "metadata": {"feature": "bench"},
    }


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def empty_table() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE creative_services_llmusage")


def count_rows() -> int:
    from creative_services.contrib.django.models import LLMUsage

    return int(LLMUsage.objects.count())


def run_batched(records: int, batch_size: int, flush_interval: float) -> dict[str, Any]:
    """One round of the sustained batched measurement."""
    from creative_services.contrib.django.tracking import DjangoUsageTracker

    tracker = DjangoUsageTracker(batch=True, batch_size=batch_size, flush_interval=flush_interval)
    for i in range(1_000):  # warm-up: start the writer, open its connection
        tracker.record(**fields(i))
    assert tracker.flush(60)
    empty_table()
    prepared = [fields(i) for i in range(records)]
    timings = [0] * records
    clock = time.perf_counter_ns
    record = tracker.record
    gc.collect()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for i, kw in enumerate(prepared):
        t0 = clock()
        record(**kw)
        timings[i] = clock() - t0
    enqueued = time.perf_counter()
    assert tracker.flush(120), "flush timed out"
    done = time.perf_counter()
    cpu = time.process_time() - cpu_started
    tracker.close()
    rows = count_rows()
    assert rows == records, f"{rows} rows written for {records} records"
    assert not tracker.failed
    micros = [t / 1000 for t in timings]
    return {
        "rate": records / (done - started),
        "enqueue_rate": records / (enqueued - started),
        "drain_s": done - enqueued,
        "p50_us": pct(micros, 50),
        "p99_us": pct(micros, 99),
        "p999_us": pct(micros, 99.9),
        "max_us": max(micros),
        "cpu_us_per_record": cpu / records * 1e6,
    }


def run_unbatched(records: int) -> dict[str, Any]:
    """``record()`` writing one row per call."""
    from creative_services.contrib.django.tracking import DjangoUsageTracker

    tracker = DjangoUsageTracker()
    for i in range(200):
        tracker.record(**fields(i))
    empty_table()
    timings = [0.0] * records
    started = time.perf_counter()
    for i in range(records):
        t0 = time.perf_counter()
        tracker.record(**fields(i))
        timings[i] = (time.perf_counter() - t0) * 1e6
    elapsed = time.perf_counter() - started
    assert count_rows() == records
    return {
        "rate": records / elapsed,
        "p50_us": pct(timings, 50),
        "p99_us": pct(timings, 99),
    }


def median_of(rounds: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    """Median, min and max of one metric over rounds."""
    values = [r[key] for r in rounds]
    return statistics.median(values), min(values), max(values)


def git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
        return rev + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per batched round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--unbatched", type=int, default=2_000, help="unbatched records")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--flush-interval", type=float, default=0.5)
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md section")
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    from creative_services.contrib.django.registry import stop_registry_watcher

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    began = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            pg_version = cursor.fetchone()[0].split(" on ")[0]
        batched = []
        for r in range(args.rounds):
            result = run_batched(args.records, args.batch_size, args.flush_interval)
            batched.append(result)
            print(
                f"batched round {r + 1}: {result['rate']:,.0f} rows/s committed "
                f"(enqueue {result['enqueue_rate']:,.0f}/s, drain {result['drain_s']:.2f} s); "
                f"record() p50 {result['p50_us']:.1f} µs, p99 {result['p99_us']:.1f} µs, "
                f"p99.9 {result['p999_us']:.1f} µs, max {result['max_us']:.0f} µs; "
                f"process CPU {result['cpu_us_per_record']:.1f} µs/record",
                flush=True,
            )
            empty_table()
        unbatched = run_unbatched(args.unbatched)
        print(
            f"unbatched: {unbatched['rate']:,.0f} rows/s; record() p50 {unbatched['p50_us']:.0f} "
            f"µs, p99 {unbatched['p99_us']:.0f} µs",
            flush=True,
        )
        empty_table()
    finally:
        stop_registry_watcher()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(SPOOL_DIR, ignore_errors=True)
    total = time.perf_counter() - began

    rate = median_of(batched, "rate")
    p50 = median_of(batched, "p50_us")
    p99 = median_of(batched, "p99_us")
    p999 = median_of(batched, "p999_us")
    cpu = median_of(batched, "cpu_us_per_record")
    rate_ok = "met" if rate[0] >= TARGET_RATE else "MISSED"
    p99_ok = "met" if p99[0] <= TARGET_P99_US else "MISSED"
    print(f"total {total:.0f} s; rate {rate[0]:,.0f}/s ({rate_ok}); p99 {p99[0]:.1f} µs ({p99_ok})")
    if not args.markdown:
        return

    def fmt(m: tuple[float, float, float], spec: str) -> str:
        return f"{m[0]:{spec}} ({m[1]:{spec}}-{m[2]:{spec}})"

    uname = platform.uname()
    print(
        f"""
## Django usage tracker (PostgreSQL)

Command: `uv run python bench/bench_django_tracker.py --records {args.records} --rounds \
{args.rounds} --unbatched {args.unbatched}` (total {total:.0f} s)

- Machine: {os.cpu_count()} CPUs; {uname.system}-{uname.release}; CPython \
{platform.python_version()}; Django {version("django")}, psycopg {version("psycopg")}; \
{pg_version} on the same machine (loopback TCP)
- creative-services {version("creative-services")} at `{git_rev()}`; \
{datetime.now(UTC).isoformat(timespec="seconds")}
- `DjangoUsageTracker(batch=True, batch_size={args.batch_size}, flush_interval=\
{args.flush_interval})`; one caller thread calls `record()` {args.records:,} times as fast as it \
can (each record shaped like the client's: ids, tokens, float cost, names, request id, \
metadata), then `flush()`. Median over {args.rounds} rounds (min-max). The benchmark's own \
database is dropped at the end.

| measure | result | target |
|---|---:|---|
| rows/s committed, batched (first `record()` to `flush()` done) | {fmt(rate, ",.0f")} \
| >= 10,000/s: **{rate_ok}** |
| `record()` caller-side p50, batched | {fmt(p50, ".1f")} µs | info |
| `record()` caller-side p99, batched | {fmt(p99, ".1f")} µs | <= 100 µs: **{p99_ok}** |
| `record()` caller-side p99.9, batched | {fmt(p999, ".1f")} µs | info |
| process CPU per record, batched (caller + writer) | {fmt(cpu, ".1f")} µs | info |
| `record()` unbatched (one INSERT, autocommit): p50 / p99 | \
{unbatched["p50_us"]:,.0f} / {unbatched["p99_us"]:,.0f} µs | info |
| rows/s unbatched, one caller | {unbatched["rate"]:,.0f} | info |
"""
    )


if __name__ == "__main__":
    main()
