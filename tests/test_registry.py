"""DictRegistry: selection, fallback order, and every way to build one."""

from __future__ import annotations

import json

import pytest

from creative_services import (
    ConfigurationError,
    DictRegistry,
    InvalidEntryError,
    LLMEntry,
    LLMRegistry,
    LLMTier,
    NoActiveEntryError,
    UnknownModelError,
)

ROWS = [
    {"name": "pricey", "provider": "openai", "model_name": "gpt-4.1", "tier": "standard",
     "cost_per_1k_input": "0.002", "cost_per_1k_output": "0.008"},
    {"name": "cheap", "provider": "openai", "model_name": "gpt-4.1-mini", "tier": "standard",
     "cost_per_1k_input": "0.0004", "cost_per_1k_output": "0.0016"},
    {"name": "unpriced", "provider": "mistral", "model_name": "mistral-small", "tier": "standard"},
    {"name": "off", "provider": "openai", "model_name": "gpt-4.1-nano", "tier": "standard",
     "is_active": False, "cost_per_1k_input": "0", "cost_per_1k_output": "0"},
    {"id": 10, "name": "local", "provider": "ollama", "model_name": "llama3.2", "tier": "local"},
]  # fmt: skip


@pytest.fixture
def registry() -> DictRegistry:
    return DictRegistry.from_dict(ROWS)


def test_implements_the_protocol(registry):
    assert isinstance(registry, LLMRegistry)


def test_ids_are_assigned_around_explicit_ones(registry):
    assert [e.id for e in registry.all_entries()] == [1, 2, 3, 4, 10]


def test_get_by_tier_is_the_cheapest_active_entry(registry):
    assert registry.get_by_tier(LLMTier.STANDARD).name == "cheap"
    assert registry.get_by_tier("STANDARD").name == "cheap"


def test_candidates_are_the_fallback_order(registry):
    assert [e.name for e in registry.candidates("standard")] == ["cheap", "pricey", "unpriced"]


def test_priority_comes_before_price():
    rows = [dict(r) for r in ROWS]
    rows[0]["priority"] = -1
    assert DictRegistry.from_dict(rows).get_by_tier("standard").name == "pricey"


def test_lookups_by_id_and_name(registry):
    assert registry.get_by_id(10).name == "local"
    assert registry.get_by_name("pricey").id == 1
    with pytest.raises(UnknownModelError, match="known ids: 1, 2, 3, 4, 10"):
        registry.get_by_id(5)
    with pytest.raises(UnknownModelError, match="disabled"):
        registry.get_by_name("off")


def test_default_and_list_active(registry):
    assert registry.get_default().name == "cheap"
    assert [e.name for e in registry.list_active()] == ["pricey", "cheap", "unpriced", "local"]
    only_local = DictRegistry([LLMEntry(name="l", provider="ollama", model_name="m", tier="local")])
    assert only_local.get_default().name == "l"


def test_empty_tier_names_itself(registry):
    with pytest.raises(NoActiveEntryError, match="'premium'"):
        registry.get_by_tier("premium")


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"name": "a", "provider": "openai", "model": "x"}], "'model'.*valid fields"),
        ([{"name": "a", "provider": "openai"}], "'model_name'.*is required"),
        (
            [{"name": "a", "provider": "openai", "model_name": "x", "max_tokens": -5}],
            "'max_tokens'",
        ),
        ([{"name": "a", "provider": "o", "model_name": "x"}] * 2, "used by two entries"),
        (["not a dict"], "must be a mapping"),
    ],
)
def test_from_dict_rejects_bad_rows_naming_entry_and_field(rows, match):
    with pytest.raises(InvalidEntryError, match=match):
        DictRegistry.from_dict(rows)


def test_from_file_toml_and_json(tmp_path):
    toml = tmp_path / "models.toml"
    toml.write_text(
        '[[models]]\nname = "fast"\nprovider = "groq"\nmodel_name = "openai/gpt-oss-20b"\n'
        'tier = "economy"\ncost_per_1k_input = 0.0001\ncost_per_1k_output = 0.0005\n'
        'api_key_env = "GROQ_API_KEY"\n[models.extra_params]\ntop_p = 0.9\n'
    )
    from_toml = DictRegistry.from_file(toml)
    fast = from_toml.get_by_tier("economy")
    assert (fast.name, fast.api_key_env, dict(fast.extra_params)) == (
        "fast",
        "GROQ_API_KEY",
        {"top_p": 0.9},
    )
    as_json = tmp_path / "models.json"
    as_json.write_text(json.dumps({"models": ROWS}))
    assert [e.name for e in DictRegistry.from_file(as_json).list_active()][:2] == [
        "pricey",
        "cheap",
    ]


def test_from_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read registry file"):
        DictRegistry.from_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigurationError, match=r"bad\.json"):
        DictRegistry.from_file(bad)


def test_from_env_explicit_json_and_path(tmp_path):
    env = {"CREATIVE_SERVICES_MODELS": json.dumps(ROWS), "OPENAI_API_KEY": "x"}
    assert len(DictRegistry.from_env(env).all_entries()) == 5
    path = tmp_path / "m.json"
    path.write_text(json.dumps(ROWS[:1]))
    assert (
        DictRegistry.from_env({"CREATIVE_SERVICES_MODELS": str(path)}).get_by_id(1).name == "pricey"
    )


def test_from_env_zero_config_with_only_openai_key():
    registry = DictRegistry.from_env({"OPENAI_API_KEY": "sk-x"})
    by_tier = {e.tier: e.model_name for e in registry.list_active()}
    assert by_tier == {
        LLMTier.ECONOMY: "gpt-4.1-nano",
        LLMTier.STANDARD: "gpt-4.1-mini",
        LLMTier.PREMIUM: "gpt-4.1",
    }
    standard = registry.get_by_tier("standard")
    assert standard.api_key_env == "OPENAI_API_KEY"
    assert not standard.api_key  # read at call time, never copied into the entry
    assert standard.api_endpoint is None


def test_from_env_honours_base_urls_and_orders_providers():
    env = {
        "ANTHROPIC_API_KEY": "a",
        "OPENAI_API_KEY": "o",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OLLAMA_HOST": "localhost:11434",
    }
    registry = DictRegistry.from_env(env)
    assert [e.provider for e in registry.candidates("standard")] == ["openai", "anthropic"]
    assert registry.get_by_tier("standard").api_endpoint == "http://127.0.0.1:9/v1"
    local = registry.get_by_tier("local")
    assert (local.provider, local.api_endpoint, local.api_key_env) == (
        "ollama",
        "localhost:11434",
        None,
    )


def test_from_env_with_nothing_says_what_to_set():
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        DictRegistry.from_env({})
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        DictRegistry.from_env({"CREATIVE_SERVICES_MODELS": "[oops"})
