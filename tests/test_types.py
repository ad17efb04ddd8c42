"""Value types: tier parsing, entry validation, secrets that never show."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal

import pytest

from creative_services import InvalidEntryError, InvalidTierError, LLMEntry, LLMTier, Secret
from creative_services.types import UsageRecord

KEY = "sk-" + "live-secret-value-123456"


@pytest.mark.parametrize("raw", ["standard", "STANDARD", " Standard ", LLMTier.STANDARD])
def test_tier_accepts_any_case(raw):
    assert LLMTier(raw) is LLMTier.STANDARD
    assert LLMTier.parse(raw) is LLMTier.STANDARD


def test_bad_tier_lists_the_valid_ones():
    with pytest.raises(InvalidTierError, match="economy, standard, premium, local") as info:
        LLMTier("gold")
    assert isinstance(info.value, ValueError)


def test_tier_is_a_str():
    assert LLMTier.PREMIUM == "premium"
    assert f"{LLMTier.LOCAL}" == "local"


def entry(**kw):
    fields = {"name": "e", "provider": "OpenAI", "model_name": "gpt-4o-mini", "api_key": KEY}
    fields.update(kw)
    return LLMEntry(**fields)


def test_entry_defaults_match_the_django_model():
    e = entry()
    assert (e.max_tokens, e.temperature, e.is_active, e.tier) == (4096, 0.7, True, LLMTier.STANDARD)
    assert e.provider == "openai"
    assert e.cost_per_1k_input is None


def test_entry_key_never_shows():
    e = entry()
    assert isinstance(e.api_key, Secret)
    assert e.api_key.get_secret_value() == KEY
    for text in (repr(e), str(e), json.dumps(e.to_dict()), repr(e.ref)):
        assert KEY not in text


def test_entry_costs_are_decimal_without_float_noise():
    e = entry(cost_per_1k_input=0.1, cost_per_1k_output="0.3")
    assert e.cost_per_1k_input == Decimal("0.1")
    assert e.cost_per_1k_output == Decimal("0.3")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("provider", None),
        ("model_name", "  "),
        ("tier", "gold"),
        ("max_tokens", 0),
        ("max_tokens", "4096"),
        ("temperature", 2.5),
        ("temperature", float("nan")),
        ("cost_per_1k_input", -1),
        ("cost_per_1k_input", "cheap"),
        ("cost_per_1k_output", float("inf")),
        ("id", "7"),
    ],
)
def test_malformed_entry_names_the_field(field, value):
    with pytest.raises(InvalidEntryError, match=repr(field)):
        entry(**{field: value})


def test_entry_pickles_with_its_key():
    e = entry(id=3)
    assert pickle.loads(pickle.dumps(e)) == e


def test_usage_record_totals_and_cost_normalisation():
    record = UsageRecord(llm_id=1, prompt_tokens=100, completion_tokens=500, cost=0.001)
    assert record.total_tokens == 600
    assert record.cost == Decimal("0.001")
    with pytest.raises(InvalidEntryError):
        UsageRecord(llm_id=1, prompt_tokens=-1)
