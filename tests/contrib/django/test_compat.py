"""BFAgent's real tables (``llms`` without tier, ``llm_name``, one price; its usage log) and the
original package's Django adapter, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest

from creative_services import ConfigurationError, DynamicLLMClient, LLMTier, NoActiveEntryError
from creative_services._compat import reset_warnings
from creative_services.contrib.django import checks
from creative_services.contrib.django.registry import DjangoLLMRegistry

from .bfagentapp.models import Llms, LLMUsageLog
from .conftest import KEY

pytestmark = pytest.mark.django_db(transaction=True)

BFAGENT = "bfagentapp.Llms"


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Any:
    reset_warnings()
    yield
    reset_warnings()


@pytest.fixture
def make_bfagent(fake_provider: Any) -> Any:
    """A row of BFAgent's ``llms`` table pointing at the fake provider."""

    def make(name: str = "bf", **fields: Any) -> Llms:
        values = {
            "provider": "openai",
            "llm_name": "gpt-4o-mini",
            "api_key": KEY,
            "api_endpoint": fake_provider.base_url,
            "cost_per_1k_tokens": Decimal("0.002"),
            **fields,
        }
        return Llms.objects.create(name=name, **values)

    return make


def old(module: str, name: str) -> Any:
    with pytest.warns(DeprecationWarning, match="original creative-services API"):
        return getattr(importlib.import_module(module), name)


def test_bfagent_table_is_read_as_it_is(settings: Any, make_bfagent: Any) -> None:
    settings.CREATIVE_SERVICES_LLM_MODEL = BFAGENT
    make_bfagent("mini")
    make_bfagent("haiku", provider="anthropic", llm_name="claude-3-5-haiku-20241022")
    make_bfagent("big", llm_name="gpt-4o")
    make_bfagent("local", provider="ollama", llm_name="qwen3:8b", cost_per_1k_tokens=0)
    make_bfagent("odd", llm_name="in-house-model")

    registry = DjangoLLMRegistry()
    tiers = {e.name: e.tier for e in registry.list_active()}
    assert registry.problems == ()
    assert tiers == {
        "mini": LLMTier.STANDARD,
        "haiku": LLMTier.ECONOMY,
        "big": LLMTier.PREMIUM,
        "local": LLMTier.LOCAL,
        "odd": LLMTier.STANDARD,  # the default tier
    }
    unpriced = make_bfagent("unpriced", cost_per_1k_tokens=0)
    registry.refresh()
    entry = registry.get_by_id(unpriced.pk)  # 0 in a column that cannot be NULL: unknown
    assert (entry.cost_per_1k_input, entry.cost_per_1k_output) == (None, None)
    assert registry.get_by_name("local").cost_per_1k_input == 0  # the local tier stays free
    mini = registry.get_by_name("mini")
    assert mini.model_name == "gpt-4o-mini"
    assert mini.cost_per_1k_input == mini.cost_per_1k_output == Decimal("0.002")
    assert mini.api_key.get_secret_value() == KEY


def test_a_call_through_the_bfagent_table(
    settings: Any, make_bfagent: Any, fake_provider: Any
) -> None:
    settings.CREATIVE_SERVICES_LLM_MODEL = BFAGENT
    make_bfagent("mini")
    fake_provider.reply("hello", prompt_tokens=1000, completion_tokens=500)
    response = DynamicLLMClient(DjangoLLMRegistry()).generate_sync("hi", tier="standard")
    assert response.content == "hello"
    assert response.cost == Decimal("0.003")  # 1500 tokens at one price of 0.002 per 1k
    assert fake_provider.requests[0].body["model"] == "gpt-4o-mini"


def test_field_mapping_and_tier_rule_settings(settings: Any, make_bfagent: Any) -> None:
    settings.CREATIVE_SERVICES_LLM_MODEL = BFAGENT
    settings.CREATIVE_SERVICES_LLM_FIELDS = {"model_name": "description"}
    settings.CREATIVE_SERVICES_LLM_TIERS = {"gpt-4o-mini": "premium"}
    settings.CREATIVE_SERVICES_LLM_DEFAULT_TIER = "economy"
    make_bfagent("a", description="gpt-4o-mini")
    make_bfagent("b", description="something-else")
    entries = {e.name: (e.model_name, e.tier) for e in DjangoLLMRegistry().list_active()}
    assert entries == {
        "a": ("gpt-4o-mini", LLMTier.PREMIUM),
        "b": ("something-else", LLMTier.ECONOMY),
    }

    settings.CREATIVE_SERVICES_LLM_TIERS = "creative_services.tier_map.derive_tier"
    settings.CREATIVE_SERVICES_LLM_FIELDS = {}
    DjangoLLMRegistry().refresh()
    assert DjangoLLMRegistry().get_by_name("a").model_name == "gpt-4o-mini"

    settings.CREATIVE_SERVICES_LLM_FIELDS = {"model_name": "no_such_field"}
    [error] = checks.check_llm_model()
    assert error.id == "creative_services.E002"
    assert "no_such_field" in error.msg


def test_a_tier_rule_naming_no_tier_makes_the_row_a_problem(
    settings: Any, make_bfagent: Any
) -> None:
    settings.CREATIVE_SERVICES_LLM_MODEL = BFAGENT
    settings.CREATIVE_SERVICES_LLM_TIERS = {"gpt-4o-mini": "gold"}
    make_bfagent("a")
    registry = DjangoLLMRegistry()
    assert registry.list_active() == []
    assert "gold" in registry.problems[0]
    errors = checks.check_entries(databases=["default"])
    assert [m.id for m in errors if m.id.startswith("creative_services.E")] == [
        "creative_services.E003"
    ]


def test_original_django_registry_returns_none_on_a_miss(make_bfagent: Any) -> None:
    registry_cls = old("creative_services.adapters.django_adapter", "DjangoLLMRegistry")
    row = make_bfagent("mini")
    registry = registry_cls(model_class=Llms)
    assert registry.get_by_id(row.pk).name == "mini"
    assert registry.get_by_id(row.pk + 100) is None
    assert registry.get_by_name("nope") is None
    assert registry.get_by_tier(LLMTier.PREMIUM) is None
    assert [e.model for e in registry.list_active()] == ["gpt-4o-mini"]


def test_bridge_with_django_registry(make_bfagent: Any, fake_provider: Any) -> None:
    from creative_services.adapters import BFAgentLLMBridge

    row = make_bfagent("mini")
    with pytest.warns(DeprecationWarning, match="with_django_registry"):
        bridge = BFAgentLLMBridge.with_django_registry(Llms)
    fake_provider.reply("from the llms table")
    assert bridge.generate_text("Hello", tier="standard") == "from the llms table"
    with pytest.warns(DeprecationWarning, match="get_llm_for_tier"):
        assert bridge.get_llm_for_tier("standard")["id"] == row.pk  # type: ignore[index]


def test_original_usage_tracker_on_the_bfagent_log_table(make_bfagent: Any) -> None:
    tracker_cls = old("creative_services.adapters.django_adapter", "DjangoUsageTracker")
    row = make_bfagent("mini")
    tracker = tracker_cls(model_class=LLMUsageLog, llm_model_class=Llms)
    tracker.track(row.pk, "bfagent", "chapters", 100, 50, 0.25, 900)
    tracker.track(row.pk + 100, "bfagent", "chapters", 10, 5, 0.01, 100, success=False,
                  error_message="timeout")  # fmt: skip
    tracker.track(row.pk, "travel", "plans", 1, 1, 0.0, 10)

    logs = list(LLMUsageLog.objects.order_by("pk"))
    assert [(r.llm_id, r.tokens_input, r.tokens_output, r.success) for r in logs] == [
        (row.pk, 100, 50, True),
        (None, 10, 5, False),  # an id with no llms row: logged without the foreign key
        (row.pk, 1, 1, True),
    ]
    assert logs[0].cost == Decimal("0.25")
    assert (logs[1].error_message, logs[0].app_name, logs[0].service_name) == (
        "timeout", "bfagent", "chapters",
    )  # fmt: skip
    stats = tracker.get_stats(app_name="bfagent")
    assert (stats.total_requests, stats.successful_requests, stats.failed_requests) == (2, 1, 1)
    assert (stats.total_tokens_input, stats.total_tokens_output) == (110, 55)
    assert stats.total_cost == pytest.approx(0.26)
    assert stats.avg_latency_ms == pytest.approx(500)
    recent = tracker.get_recent(limit=2)
    assert [r.prompt_tokens for r in recent] == [1, 10]
    assert recent[1].metadata["error_message"] == "timeout"


def test_a_bridge_call_is_written_to_the_log_table(
    settings: Any, make_bfagent: Any, fake_provider: Any
) -> None:
    from creative_services.adapters import BFAgentLLMBridge, LegacyLogTracker

    settings.CREATIVE_SERVICES_LLM_MODEL = BFAGENT
    row = make_bfagent("mini")
    tracker = LegacyLogTracker(LLMUsageLog, Llms, app_name="cad", service_name="backend")
    bridge = BFAgentLLMBridge(DjangoLLMRegistry(), tracker=tracker)
    fake_provider.reply("ok", prompt_tokens=30, completion_tokens=20)
    assert bridge.generate_text("hi", llm_id=row.pk) == "ok"
    log = LLMUsageLog.objects.get()
    assert (log.llm_id, log.tokens_input, log.tokens_output, log.app_name) == (
        row.pk,
        30,
        20,
        "cad",
    )
    assert log.cost == Decimal("0.0001")  # 50 tokens at 0.002 per 1k


def test_a_failed_call_is_logged_as_failed(make_bfagent: Any, fake_provider: Any) -> None:
    from creative_services import BadRequestError
    from creative_services.adapters import LegacyLogTracker

    row = make_bfagent("mini")
    client = DynamicLLMClient(DjangoLLMRegistry(Llms), tracker=LegacyLogTracker(LLMUsageLog, Llms))
    fake_provider.fail(400, "bad request")
    with pytest.raises(BadRequestError):
        client.generate_sync("hi", llm_id=row.pk)
    log = LLMUsageLog.objects.get()
    assert (log.llm_id, log.success, log.error_message) == (row.pk, False, "BadRequestError")


def test_original_tracker_on_a_log_table_of_the_other_shape(make_bfagent: Any) -> None:
    from .bfagentapp.models import TravelUsageLog

    tracker_cls = old("creative_services.adapters.django_adapter", "DjangoUsageTracker")
    tracker = tracker_cls(model_class=TravelUsageLog)
    tracker.track(42, "travel", "plans", 12, 8, 0.5, 300)
    log = TravelUsageLog.objects.get()
    assert (log.llm_id, log.input_tokens, log.output_tokens, log.cost) == (
        42,
        12,
        8,
        Decimal("0.5"),
    )
    stats = tracker.get_stats(app_name="travel")  # no app column: not filtered
    assert (stats.total_requests, stats.total_tokens_input, stats.total_cost) == (1, 12, 0.5)
    assert [r.completion_tokens for r in tracker.get_recent(5)] == [8]


def test_a_log_table_without_tokens_is_refused() -> None:
    from creative_services.adapters import LegacyLogTracker

    with pytest.raises(ConfigurationError, match="tokens_input"):
        LegacyLogTracker(Llms)


# --- the setting that is missing: the error and W008 ----------------------------------------


def test_empty_shipped_table_with_an_llms_model_names_the_setting(settings: Any) -> None:
    del settings.CREATIVE_SERVICES_LLM_MODEL
    with pytest.raises(
        ConfigurationError, match=r"CREATIVE_SERVICES_LLM_MODEL = 'bfagentapp\.Llms'"
    ):
        DjangoLLMRegistry().get_default()


def test_empty_shipped_table_with_the_setting_is_todays_error(settings: Any) -> None:
    settings.CREATIVE_SERVICES_LLM_MODEL = "creative_services.LLMModel"
    with pytest.raises(NoActiveEntryError):
        DjangoLLMRegistry().get_default()


def test_w008_llms_model_installed_and_setting_unset(settings: Any) -> None:
    del settings.CREATIVE_SERVICES_LLM_MODEL
    messages = checks.check_llms_model_setting()
    assert [m.id for m in messages] == ["creative_services.W008"]
    assert "CREATIVE_SERVICES_LLM_MODEL = 'bfagentapp.Llms'" in str(messages[0].hint)
    settings.CREATIVE_SERVICES_LLM_MODEL = BFAGENT
    assert checks.check_llms_model_setting() == []


def test_w008_is_registered() -> None:
    from django.core.checks.registry import registry

    assert checks.check_llms_model_setting in registry.get_checks()
