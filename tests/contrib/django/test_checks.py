"""One test per system check id, and the creative_services_check command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from creative_services.contrib.django import checks

pytestmark = pytest.mark.django_db(transaction=True)


def ids(databases: list[str] | None = None) -> list[str]:
    messages = [
        *checks.check_llm_model(),
        *checks.check_litellm_version(),
        *checks.check_entries(databases=databases or ["default"]),
        *checks.check_registry_fresh(),
    ]
    return sorted(m.id for m in messages)


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")


def test_a_clean_configuration_passes(make_llm):
    make_llm()
    assert ids() == []
    call_command("creative_services_check", stdout=io.StringIO())


def test_e001_model_setting_that_does_not_resolve(settings):
    settings.CREATIVE_SERVICES_LLM_MODEL = "nope.Missing"
    assert ids() == ["creative_services.E001"]


def test_e002_model_without_the_required_fields(settings):
    settings.CREATIVE_SERVICES_LLM_MODEL = "auth.Group"
    assert ids() == ["creative_services.E002"]


def test_e003_row_that_makes_no_valid_entry(make_llm):
    make_llm()
    make_llm("broken", tier="gold")
    assert ids() == ["creative_services.E003"]


def test_e004_known_bad_litellm(monkeypatch, make_llm):
    make_llm()
    monkeypatch.setattr("importlib.metadata.version", lambda name: "1.82.8")
    assert ids() == ["creative_services.E004"]


def test_w001_tier_without_an_active_entry(make_llm):
    make_llm()
    make_llm("eco", tier="economy", is_active=False)
    assert ids() == ["creative_services.W001"]


def test_w002_active_entry_whose_key_variable_is_missing(make_llm, monkeypatch):
    monkeypatch.delenv("CS_TEST_MISSING_KEY", raising=False)
    make_llm(api_key="", api_key_env="CS_TEST_MISSING_KEY")
    assert ids() == ["creative_services.W002"]


def test_w003_unpriced_model_unknown_to_litellm(make_llm):
    make_llm(model_name="no-such-model-xyz", cost_per_1k_input=None, cost_per_1k_output=None)
    make_llm("known", model_name="gpt-4o-mini", cost_per_1k_input=None, cost_per_1k_output=None)
    make_llm("local", tier="local", provider="ollama", model_name="llama3", cost_per_1k_input=None)
    assert ids() == ["creative_services.W003"]


def test_w003_legacy_zero_prices_count_as_no_price(make_legacy, legacy_model):
    zero = {"cost_per_1k_input": 0, "cost_per_1k_output": 0}
    make_legacy("seeded", model_name="no-such-model-xyz", **zero)
    make_legacy("box", tier="local", provider="ollama", model_name="llama3", **zero)

    messages = checks.check_entries(databases=["default"])

    w003 = [m for m in messages if m.id == "creative_services.W003"]
    assert [m.msg.split("'")[1] for m in w003] == ["seeded"]
    assert "0 for both reads as no price" in str(w003[0].hint)


def test_w004_llm_table_without_version_triggers(make_legacy, legacy_model):
    make_legacy()

    messages = checks.check_entries(databases=["default"])

    assert [m.id for m in messages] == ["creative_services.W004"]
    assert 'InstallVersionTriggers("legacyapp.Llms")' in str(messages[0].hint)
    assert checks.check_entries(databases=None) == []  # no database access, no query


def test_w007_registry_whose_checks_fail_is_stale(make_llm):
    """The watcher cannot read the stamp table for longer than 5 s: W007, from memory only."""
    import time

    from django.db import connection

    from creative_services.adapters import DjangoLLMRegistry
    from creative_services.contrib.django.triggers import STAMP_TABLE

    make_llm()
    registry = DjangoLLMRegistry()
    registry.list_active()
    assert ids() == []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote(STAMP_TABLE)} RENAME TO {quote('cs_moved_away')}")
    try:
        started = time.monotonic()
        while not checks.check_registry_fresh() and time.monotonic() - started < 20:
            time.sleep(0.1)
        messages = checks.check_registry_fresh()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {quote('cs_moved_away')} RENAME TO {quote(STAMP_TABLE)}")
    assert [m.id for m in messages] == ["creative_services.W007"]
    assert "is stale for" in messages[0].msg
    assert "the last snapshot is in use" in messages[0].msg
    assert registry.list_active()  # still served from the last snapshot
    started = time.monotonic()
    while checks.check_registry_fresh() and time.monotonic() - started < 20:
        time.sleep(0.1)
    assert ids() == []  # fresh again once the table is back


def test_database_checks_wait_for_a_database():
    assert checks.check_entries(databases=None) == []


def test_check_command_exits_non_zero_on_errors(make_llm):
    make_llm("broken", tier="gold")
    with pytest.raises(SystemCheckError, match=r"creative_services\.E003"):
        call_command("creative_services_check", stdout=io.StringIO(), stderr=io.StringIO())


def test_check_command_fails_on_warnings_when_asked(make_llm):
    make_llm("eco", tier="economy", is_active=False)
    make_llm()
    call_command("creative_services_check", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(SystemCheckError, match=r"creative_services\.W001"):
        call_command(
            "creative_services_check", "--fail-level", "WARNING",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip


def test_w009_counts_the_unwritten_records_a_dead_process_left(tmp_path):
    import subprocess
    import sys
    import textwrap

    from django.test import override_settings

    from creative_services.contrib.django.checks import check_usage_spool

    with override_settings(CREATIVE_SERVICES_USAGE_SPOOL=str(tmp_path)):
        assert check_usage_spool() == []
        child = textwrap.dedent(f"""
            import os
            from pathlib import Path
            from creative_services.contrib.django._spool import Spool
            from creative_services.types import UsageRecord
            spool = Spool(Path({str(tmp_path / "db")!r}), 1 << 20)
            for i in range(7):
                spool.append(UsageRecord(llm_id=None, request_id=str(i)))
            os._exit(0)
        """)
        subprocess.run([sys.executable, "-c", child], check=True, timeout=60)
        [warning] = check_usage_spool()
    assert warning.id == "creative_services.W009"
    assert "holds 7 unwritten usage records in 1 files (7 left by processes that died)" in (
        warning.msg
    )
