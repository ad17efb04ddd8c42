"""DjangoLLMRegistry: the seed's calls, zero queries per call, changes seen within a second."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from creative_services import ConfigurationError, DynamicLLMClient, LLMTier, UnknownModelError
from creative_services.adapters import DjangoLLMRegistry
from creative_services.contrib.django.models import LLMModel

from .conftest import KEY, LEGACY
from .legacyapp.models import Llms

pytestmark = pytest.mark.django_db(transaction=True)

TESTS_DIR = Path(__file__).resolve().parents[2]


def wait_for(predicate: Any, limit: float = 1.0) -> float:
    """Seconds until ``predicate()`` holds; fails past ``limit``."""
    started = time.monotonic()

    def holds() -> bool:
        try:
            return bool(predicate())
        except LookupError:  # e.g. the table was empty for a moment
            return False

    while not holds():
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"not seen within {limit} s"
        time.sleep(0.01)
    return time.monotonic() - started


def test_seed_calls_on_shipped_model(make_llm):
    make_llm("cheap", cost_per_1k_input="0.0001", cost_per_1k_output="0.0002")
    make_llm("dear", model_name="gpt-4o", cost_per_1k_input="0.0025", cost_per_1k_output="0.01")
    make_llm("off", is_active=False)

    entry = DjangoLLMRegistry().get_by_tier(LLMTier.STANDARD)
    active = DjangoLLMRegistry().list_active()

    assert entry.name == "cheap"
    assert entry.api_key.get_secret_value() == KEY
    assert entry.cost_per_1k_input == Decimal("0.0001")
    assert [e.name for e in active] == ["cheap", "dear"]


def test_seed_calls_on_legacy_model(make_legacy, legacy_model):
    make_legacy("legacy-std", cost_per_1k_input="0.0003")
    make_legacy("legacy-eco", tier="ECONOMY", api_endpoint=None)
    make_legacy("legacy-off", is_active=False)

    entry = DjangoLLMRegistry().get_by_tier(LLMTier.STANDARD)
    active = DjangoLLMRegistry().list_active()

    assert entry.name == "legacy-std"
    assert entry.api_key.get_secret_value() == KEY
    assert entry.priority == 0
    assert entry.api_key_env is None
    assert [(e.name, e.tier) for e in active] == [
        ("legacy-std", LLMTier.STANDARD),
        ("legacy-eco", LLMTier.ECONOMY),
    ]
    assert active[1].api_endpoint is None


def test_legacy_zero_prices_read_as_unknown_except_on_the_local_tier(make_legacy, legacy_model):
    zero = {"cost_per_1k_input": 0, "cost_per_1k_output": 0}
    make_legacy("seeded", **zero)  # the seed model's defaults: nobody entered a price
    make_legacy("half", cost_per_1k_input=0, cost_per_1k_output="0.0006")
    make_legacy("box", tier="local", provider="ollama", model_name="llama3", **zero)

    registry = DjangoLLMRegistry()
    seeded, half, box = (registry.get_by_name(n) for n in ("seeded", "half", "box"))

    assert (seeded.cost_per_1k_input, seeded.cost_per_1k_output) == (None, None)
    assert (half.cost_per_1k_input, half.cost_per_1k_output) == (0, Decimal("0.0006"))
    assert (box.cost_per_1k_input, box.cost_per_1k_output) == (0, 0)


def test_shipped_model_zero_prices_stay_free(make_llm):
    make_llm("free", cost_per_1k_input=0, cost_per_1k_output=0)  # the model could store NULL
    entry = DjangoLLMRegistry().get_by_name("free")
    assert (entry.cost_per_1k_input, entry.cost_per_1k_output) == (0, 0)


def test_rows_map_to_entries_in_priority_order(make_llm):
    make_llm("second", priority=5, api_key="", api_key_env="MY_KEY", api_endpoint="")
    first = make_llm("first", priority=1, max_tokens=100, temperature=0.2)

    registry = DjangoLLMRegistry()
    entries = registry.all_entries()

    assert [e.name for e in entries] == ["first", "second"]
    assert entries[0].id == first.pk
    assert entries[0].max_tokens == 100
    assert entries[0].temperature == 0.2
    assert entries[1].api_key_env == "MY_KEY"
    assert not entries[1].api_key
    assert entries[1].api_endpoint is None
    assert registry.get_by_id(first.pk).name == "first"
    with pytest.raises(UnknownModelError):
        registry.get_by_name("nope")


def test_steady_state_generate_makes_zero_queries(
    make_llm, fake_provider, django_assert_num_queries
):
    make_llm()
    client = DynamicLLMClient(DjangoLLMRegistry())
    client.generate_sync(prompt="warm up", tier=LLMTier.STANDARD)

    with django_assert_num_queries(0):
        response = client.generate_sync(prompt="hello", tier=LLMTier.STANDARD, user_id=7)
        DjangoLLMRegistry().get_by_tier("standard")  # a new registry shares the snapshot

    assert response.content
    assert response.cost is not None


@pytest.fixture
def one_row(make_llm: Any) -> Any:
    return make_llm()


async def test_async_generate_from_a_cold_start_makes_no_query_on_the_loop(one_row, fake_provider):
    queries: list[str] = []
    client = DynamicLLMClient(DjangoLLMRegistry())
    # Any ORM use on the loop would raise SynchronousOnlyOperation; count queries all the same.
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql)):
        first = await client.generate(prompt="hello", tier="standard")
        second = await client.generate(prompt="again", llm_name="primary")

    assert first.entry.name == second.entry.name == "primary"
    assert queries == []


async def test_async_cold_start_never_blocks_the_loop(one_row, fake_provider, monkeypatch):
    from creative_services.contrib.django import _watch

    _watch.stop()  # a new process: no snapshot yet
    slow_check = _watch.Source.check

    def check(self: Any, db: Any) -> None:
        time.sleep(0.6)  # a slow first read of the table
        slow_check(self, db)

    monkeypatch.setattr(_watch.Source, "check", check)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    try:
        response = await DynamicLLMClient(DjangoLLMRegistry()).generate(prompt="hi")
    finally:
        tick.cancel()
    assert response.entry.name == "primary"
    # A read on the loop would stall it for the whole 0.6 s sleep; a loaded machine can still
    # delay one tick by a few hundred ms, so the bound is the sleep itself, not a tight guess.
    assert max(gaps) < 0.55  # the loop kept running while the table was read


async def test_arefresh_warms_without_blocking_the_loop(one_row):
    registry = DjangoLLMRegistry()
    await registry.arefresh()
    assert registry.get_by_name("primary").id == one_row.pk


async def test_lookup_on_a_running_loop_never_waits_for_a_reload(one_row, monkeypatch):
    from creative_services.contrib.django import _watch

    registry = DjangoLLMRegistry()
    await registry.arefresh()
    monkeypatch.setattr(_watch.Source, "check", lambda self: None)  # a reload that never ends
    for source in _watch._sources.values():
        source.fresh.clear()  # as after a post_save invalidation
    started = time.monotonic()
    assert registry.get_by_name("primary").id == one_row.pk  # the previous snapshot
    assert time.monotonic() - started < 0.5


def test_own_save_is_used_at_once(make_llm):
    row = make_llm()
    registry = DjangoLLMRegistry()
    assert registry.get_by_tier("standard").model_name == "gpt-4o-mini"

    row.model_name = "gpt-4.1-mini"
    row.save()
    assert registry.get_by_tier("standard").model_name == "gpt-4.1-mini"
    row.delete()
    with pytest.raises(UnknownModelError):
        registry.get_by_name("primary")


@pytest.mark.parametrize("how", ["update", "bulk_create", "raw_sql", "delete"])
def test_changes_without_signals_are_used_within_a_second(make_llm, how):
    row = make_llm()
    registry = DjangoLLMRegistry()
    assert registry.get_by_tier("standard").name == "primary"

    if how == "update":
        LLMModel.objects.filter(pk=row.pk).update(priority=3)
        make_llm("other", priority=5)  # a signal-free change must still win without it
        LLMModel.objects.filter(name="other").update(priority=1)
    elif how == "bulk_create":
        LLMModel.objects.bulk_create([LLMModel(name="other", provider="openai",
                                               model_name="m", priority=-1)])  # fmt: skip
    elif how == "raw_sql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {LLMModel._meta.db_table} SET name = %s WHERE id = %s",  # noqa: S608
                ["other", row.pk],
            )
    else:
        LLMModel.objects.filter(pk=row.pk).delete()
        assert LLMModel.objects.count() == 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {LLMModel._meta.db_table} (name, provider, model_name, tier, "  # noqa: S608
                "api_key, api_endpoint, max_tokens, temperature, is_active, priority, "
                "api_key_env, created_at, updated_at) VALUES ('other', 'openai', 'm', "
                "'standard', '', '', 10, 0.5, %s, 0, '', %s, %s)",
                [True, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"],
            )

    elapsed = wait_for(lambda: registry.get_by_tier("standard").name == "other")
    assert elapsed < 1.0


def test_legacy_update_is_used_within_a_second(make_legacy, legacy_model):
    row = make_legacy()
    registry = DjangoLLMRegistry()
    assert registry.get_by_tier("standard").model_name == "gpt-4o-mini"

    Llms.objects.filter(pk=row.pk).update(model_name="gpt-4.1")

    assert wait_for(lambda: registry.get_by_tier("standard").model_name == "gpt-4.1") < 1.0


def test_invalid_row_is_left_out_and_reported(make_llm):
    make_llm("good")
    make_llm("bad", tier="gold")

    registry = DjangoLLMRegistry()

    assert [e.name for e in registry.all_entries()] == ["good"]
    assert len(registry.problems) == 1
    assert "'bad'" in registry.problems[0]


def test_override_settings_switches_an_existing_registry(make_llm, make_legacy, settings):
    make_llm("shipped")
    make_legacy("old")
    registry = DjangoLLMRegistry()
    assert [e.name for e in registry.list_active()] == ["shipped"]

    settings.CREATIVE_SERVICES_LLM_MODEL = LEGACY

    assert [e.name for e in registry.list_active()] == ["old"]


def test_unknown_model_setting_raises_configuration_error(settings):
    settings.CREATIVE_SERVICES_LLM_MODEL = "nope.Missing"
    with pytest.raises(ConfigurationError, match=r"nope\.Missing"):
        DjangoLLMRegistry().list_active()


def test_model_without_the_seed_fields_raises_configuration_error():
    with pytest.raises(ConfigurationError, match="lacks the field"):
        DjangoLLMRegistry("auth.Group").list_active()


def test_database_errors_keep_the_last_snapshot_then_recover(make_llm, monkeypatch):
    from django.db import OperationalError

    from creative_services.contrib.django import _watch

    row = make_llm()
    registry = DjangoLLMRegistry()
    assert registry.get_by_tier("standard").priority == 0

    def down(*args: Any) -> Any:
        raise OperationalError("the database went away")

    real_fetch = _watch.fetch_rows
    monkeypatch.setattr(_watch, "fetch_rows", down)
    LLMModel.objects.filter(pk=row.pk).update(priority=4)
    wait_for(lambda: registry._source().error is not None)
    assert registry.get_by_tier("standard").priority == 0  # still served, from memory

    monkeypatch.setattr(_watch, "fetch_rows", real_fetch)
    assert wait_for(lambda: registry.get_by_tier("standard").priority == 4) < 1.0


def test_stamp_mode_on_shipped_model_and_poll_mode_on_legacy(make_llm, make_legacy):
    from creative_services.contrib.django import _watch

    make_llm()
    make_legacy()
    shipped, legacy = DjangoLLMRegistry(), DjangoLLMRegistry(LEGACY)
    shipped.list_active(), legacy.list_active()

    sources = {s.model._meta.label: s.stamped for s in _watch._sources.values()}
    assert sources == {"creative_services.LLMModel": True, "legacyapp.Llms": False}


CHILD = """
import sys, time
import django
from django.conf import settings
from contrib.django import settings as test_settings
settings.configure(**{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()})
django.setup()
from creative_services import DynamicLLMClient
from creative_services.adapters import DjangoLLMRegistry

clients = {label: DynamicLLMClient(DjangoLLMRegistry(label)) for label in sys.argv[1:]}

def used(label):
    return clients[label].generate_sync(prompt="hi", tier="standard").entry.model

print("READY", *(used(label) for label in clients), flush=True)
for line in sys.stdin:
    label, expected = line.split()
    started, seen = time.monotonic(), None
    while seen is None and time.monotonic() - started < 1.0:
        if clients[label].registry.get_by_tier("standard").model_name == expected:
            seen = time.monotonic() - started
        time.sleep(0.005)
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    print("USED", used(label), seen, flush=True)
"""


def _changes(model: Any, row: Any) -> list[tuple[str, Any]]:
    table = model._meta.db_table
    return [
        ("m2", lambda: model.objects.filter(pk=row.pk).update(model_name="m2")),
        ("m3", lambda: connection.cursor().execute(
            f"UPDATE {table} SET model_name = %s WHERE id = %s", ["m3", row.pk])),  # noqa: S608
        ("m4", lambda: (model.objects.filter(pk=row.pk).update(is_active=False),
                        model.objects.bulk_create([model(name="b", provider="openai",
                        model_name="m4", tier="standard", api_key=KEY,
                        api_endpoint=row.api_endpoint)]))),
    ]  # fmt: skip


def test_other_process_uses_changes_after_one_second(make_llm, make_legacy):
    """QuerySet.update(), raw SQL and bulk_create() here; the child's next call uses them."""
    rows = {"creative_services.LLMModel": make_llm("a", model_name="m1"),
            LEGACY: make_legacy("a", model_name="m1")}  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
        "CS_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "CS_TEST_CHECK_INTERVAL": "0.5",  # the shipped default, not the tests' faster one
    }
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), *rows],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    delays: list[float] = []
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().split() == ["READY", "m1", "m1"]
        for label, row in rows.items():
            for expected, change in _changes(type(row), row):
                change()
                child.stdin.write(f"{label} {expected}\n")
                child.stdin.flush()
                word, used, seen = child.stdout.readline().split()
                assert (word, used) == ("USED", expected), label
                assert seen != "None", label
                delays.append(float(seen))
    finally:
        _, errors = child.communicate(timeout=60)  # closes stdin: the child exits
    assert child.returncode == 0, errors
    print("seen by the other process after (s):", [round(d, 3) for d in delays])
    assert max(delays) < 1.0


def test_hung_watcher_is_logged_as_stale_each_interval_and_lookups_stay_fast(
    one_row, monkeypatch, caplog, settings
):
    import logging
    import threading

    from creative_services.contrib.django import _watch

    settings.CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT = 0.2
    registry = DjangoLLMRegistry()
    assert registry.get_by_name("primary").id == one_row.pk
    source = registry._source()
    assert source.checked_at is not None
    entered, release = threading.Event(), threading.Event()

    def hang(self: Any, db: Any) -> None:  # a wait that no socket shutdown can end
        entered.set()
        release.wait(30)

    monkeypatch.setattr(_watch.Source, "check", hang)
    source.next_check = 0.0
    _watch._ensure_watcher().wake()
    try:
        assert entered.wait(5)
        source.checked_at = time.monotonic() - 2 * source.stale_after  # as if hung that long
        with caplog.at_level(logging.WARNING, logger="creative_services"):
            started = time.monotonic()
            while time.monotonic() - started < 3.5:
                before = time.monotonic()
                assert registry.get_by_name("primary").id == one_row.pk  # the old snapshot
                assert time.monotonic() - before < 0.05
                time.sleep(0.01)
        stale = [r for r in caplog.records if "llm_registry_stale" in r.getMessage()]
        assert len(stale) >= 2, caplog.text  # each interval (>= 1 s apart), not once a minute
        assert len(stale) <= 5, caplog.text
        assert "age_s" in stale[-1].getMessage()
        assert "no answer from the database within 0.2 s" in caplog.text
    finally:
        release.set()


def test_watcher_connection_has_a_statement_timeout(one_row, monkeypatch):
    from creative_services.contrib.django import _watch

    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    seen: list[str] = []
    real_read_stamp = _watch._read_stamp

    def read_stamp(conn: Any) -> Any:  # runs inside a check, on the watcher's connection
        with conn.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return real_read_stamp(conn)

    monkeypatch.setattr(_watch, "_read_stamp", read_stamp)
    DjangoLLMRegistry().list_active()
    wait_for(lambda: seen, limit=2.0)
    assert set(seen) == {"5s"}
