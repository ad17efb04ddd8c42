"""Management commands: import, export, usage summary and pruning, with their error cases."""

from __future__ import annotations

import datetime as dt
import io
import json
import tomllib
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from creative_services import DictRegistry
from creative_services.contrib.django.models import LLMModel, LLMUsage
from creative_services.contrib.django.tracking import DjangoUsageTracker

from .conftest import KEY

pytestmark = pytest.mark.django_db(transaction=True)  # the tracker writes on commit


def run(*args: Any, **options: Any) -> tuple[str, str]:
    """Run a command; return what it wrote to stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def stored_key(name: str) -> str:
    """The api_key column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM creative_services_llmmodel WHERE name = %s", [name])
        return str(cursor.fetchone()[0])


ENTRIES = [
    {
        "name": "fast",
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "tier": "economy",
        "api_key": KEY,
        "cost_per_1k_input": "0.00015",
        "cost_per_1k_output": "0.0006",
        "priority": 2,
    },
    {
        "name": "smart",
        "provider": "anthropic",
        "model_name": "claude-sonnet-4-5",
        "tier": "premium",
        "api_key_env": "MY_ANTHROPIC_KEY",
        "max_tokens": 8192,
        "temperature": 0.2,
    },
]


# --- import ------------------------------------------------------------------------------------


def test_import_json_creates_rows_with_the_key_encrypted_and_the_variable_kept(tmp_path):
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": ENTRIES}))

    out, _ = run("creative_services_import", str(path))

    assert "2 created, 0 updated, 0 unchanged" in out
    assert KEY not in out
    fast, smart = LLMModel.objects.get(name="fast"), LLMModel.objects.get(name="smart")
    assert fast.api_key == KEY
    assert stored_key("fast").startswith("fernet:")
    assert KEY not in stored_key("fast")
    assert (fast.tier, fast.priority, fast.cost_per_1k_input) == ("economy", 2, Decimal("0.00015"))
    assert (smart.api_key, smart.api_key_env) == ("", "MY_ANTHROPIC_KEY")
    assert (smart.max_tokens, smart.temperature, smart.cost_per_1k_input) == (8192, 0.2, None)


def test_import_toml_updates_by_name_only_the_fields_given(tmp_path, make_llm):
    make_llm("fast", tier="standard", priority=5)
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "fast"\nprovider = "openai"\nmodel_name = "gpt-4o-mini"\n'
        'tier = "economy"\n\n'
        '[[models]]\nname = "local"\nprovider = "ollama"\nmodel_name = "llama3.2"\n'
        'tier = "local"\n'
    )

    out, _ = run("creative_services_import", str(path))

    assert "fast: updated: tier" in out
    assert "1 created, 1 updated, 0 unchanged" in out
    fast = LLMModel.objects.get(name="fast")
    assert (fast.tier, fast.priority, fast.api_key) == ("economy", 5, KEY)  # untouched fields kept
    assert fast.cost_per_1k_input == Decimal("0.00015")
    assert LLMModel.objects.get(name="local").tier == "local"

    out, _ = run("creative_services_import", str(path))
    assert "0 created, 0 updated, 2 unchanged" in out


def test_import_dry_run_reports_and_writes_nothing(tmp_path, make_llm):
    make_llm("fast", tier="standard")
    path = tmp_path / "models.json"
    path.write_text(json.dumps(ENTRIES))

    out, _ = run("creative_services_import", str(path), "--dry-run")

    assert "fast: would be updated" in out
    assert "smart: would be created" in out
    assert "Dry run, nothing written" in out
    assert list(LLMModel.objects.values_list("name", "tier")) == [("fast", "standard")]


def test_import_reads_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(ENTRIES[:1])))
    run("creative_services_import", "-")
    assert LLMModel.objects.get().name == "fast"


def test_import_from_env_explicit_models(monkeypatch):
    monkeypatch.setenv("CREATIVE_SERVICES_MODELS", json.dumps(ENTRIES))

    out, _ = run("creative_services_import", "--from-env")

    assert "2 created" in out
    assert LLMModel.objects.get(name="fast").api_key == KEY
    assert LLMModel.objects.get(name="smart").api_key_env == "MY_ANTHROPIC_KEY"


def test_import_from_env_zero_config_keeps_the_key_in_the_environment(monkeypatch, make_llm):
    from creative_services._providers import PROVIDERS

    for spec in PROVIDERS.values():
        for var in (*spec.key_envs, *spec.presence_envs, *spec.base_url_envs):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CREATIVE_SERVICES_MODELS", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    expected = DictRegistry.from_env().all_entries()
    make_llm(expected[0].name, tier="premium")  # a stored key that the import must keep

    out, _ = run("creative_services_import", "--from-env")

    assert KEY not in out
    assert LLMModel.objects.count() == len(expected)
    for entry in expected:
        row = LLMModel.objects.get(name=entry.name)
        assert (row.provider, row.model_name, row.tier) == (
            entry.provider, entry.model_name, entry.tier.value
        )  # fmt: skip
        assert row.api_key_env == "OPENAI_API_KEY"
    assert LLMModel.objects.get(name=expected[0].name).api_key == KEY  # not cleared


def test_import_into_a_legacy_model_warns_about_fields_it_cannot_store(tmp_path, legacy_model):
    from .legacyapp.models import Llms

    path = tmp_path / "models.json"
    path.write_text(json.dumps(ENTRIES))

    out, err = run("creative_services_import", str(path))

    assert "2 created" in out
    assert "has no column for priority" in err
    assert "has no column for api_key_env" in err
    assert "api_key is not encrypted" in err
    fast = Llms.objects.get(name="fast")
    assert (fast.tier, fast.api_key, fast.cost_per_1k_output) == ("economy", KEY, Decimal("0.0006"))
    assert Llms.objects.get(name="smart").cost_per_1k_input == 0  # the model's default


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("{not json", ".json", "is not valid JSON"),
        ("[[models]\nname=", ".toml", "is not valid TOML"),
        ("{not json, not toml", ".txt", "neither valid JSON"),
        ('{"models": 3}', ".json", "expected a list of entries"),
        ('["fast"]', ".json", "entry #1 must be a mapping"),
        ('[{"name": "x", "provider": "openai"}]', ".json", "model_name"),
        ('[{"name": "x", "provider": "openai", "model_name": "m", "tier": "gold"}]', ".json",
         "tier"),
        ('[{"name": "x", "provider": "openai", "model_name": "m", "colour": 1}]', ".json",
         "colour"),
    ],
)  # fmt: skip
def test_import_bad_file_is_a_command_error_naming_the_problem(tmp_path, content, suffix, message):
    path = tmp_path / f"models{suffix}"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("creative_services_import", str(path))
    assert not LLMModel.objects.exists()


OPAQUE = "opaque-" + "Rn5Wq9Mz3Kx7Bv1Tc4Pf"  # no known key shape: only its value can mask it


@pytest.mark.parametrize(
    "rows",
    [
        [["x", "openai", "m", OPAQUE]],  # a row that is not a mapping
        [{"name": "x", "provider": "openai", "model_name": "m", "api_key": OPAQUE},
         {"name": OPAQUE, "provider": "openai", "model_name": "m", "api_key": OPAQUE,
          "tier": "gold"}],
    ],
)  # fmt: skip
def test_import_errors_never_show_a_key(tmp_path, rows):
    path = tmp_path / "models.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(CommandError) as caught:
        run("creative_services_import", str(path))
    text = str(caught.value)
    assert [OPAQUE[i : i + 8] for i in range(len(OPAQUE) - 7) if OPAQUE[i : i + 8] in text] == []
    assert "entry" in text  # the problem is still named
    assert not LLMModel.objects.exists()


def test_import_is_all_or_nothing(tmp_path):
    path = tmp_path / "models.json"
    too_long = {"name": "y" * 150, "provider": "openai", "model_name": "m"}
    path.write_text(json.dumps([ENTRIES[0], too_long]))

    with pytest.raises(CommandError, match=r"does not fit creative_services\.LLMModel"):
        run("creative_services_import", str(path))

    assert not LLMModel.objects.exists()


def test_import_argument_errors(tmp_path):
    with pytest.raises(CommandError, match="cannot read registry file"):
        run("creative_services_import", str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match="not both"):
        run("creative_services_import", "x.json", "--from-env")
    with pytest.raises(CommandError, match="not both"):
        run("creative_services_import")


def test_import_error_exits_non_zero_from_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(
            ["manage.py", "creative_services_import", str(tmp_path / "missing.json")]
        )
    assert exited.value.code == 1
    assert "cannot read registry file" in capsys.readouterr().err


# --- export ------------------------------------------------------------------------------------


def test_export_json_masks_keys_and_keeps_variables(make_llm):
    make_llm("fast", tier="economy", priority=2)
    make_llm("smart", api_key="", api_key_env="MY_KEY", cost_per_1k_input=None)

    out, _ = run("creative_services_export")

    assert KEY not in out
    assert "fernet:" not in out
    models = {m["name"]: m for m in json.loads(out)["models"]}
    assert models["fast"]["api_key"] == "**********"
    assert models["fast"]["cost_per_1k_input"] == "0.00015"
    assert (models["fast"]["tier"], models["fast"]["priority"]) == ("economy", 2)
    assert "api_key" not in models["smart"]
    assert models["smart"]["api_key_env"] == "MY_KEY"
    assert models["smart"]["cost_per_1k_input"] is None
    assert DictRegistry.from_dict(json.loads(out)["models"]).get_by_name("smart").tier.value == (
        "standard"
    )


def test_export_toml_to_a_file_round_trips_through_import(tmp_path, make_llm):
    make_llm("fast", tier="economy", priority=2, api_endpoint='http://h/"quoted"\\path')
    make_llm("smart", api_key="", api_key_env="MY_KEY", is_active=False, temperature=1.25)
    path = tmp_path / "out.toml"

    _, err = run("creative_services_export", "--format", "toml", "-o", str(path))

    assert "Wrote 2 entries" in err
    text = path.read_text()
    assert KEY not in text
    by_name = {m["name"]: m for m in tomllib.loads(text)["models"]}
    assert by_name["fast"]["api_endpoint"] == 'http://h/"quoted"\\path'
    registry = DictRegistry.from_file(path)
    entries = {e.name: e for e in registry.all_entries()}
    assert entries["smart"].is_active is False
    assert entries["fast"].api_key.get_secret_value() == "**********"

    before = list(LLMModel.objects.order_by("name").values())
    out, _ = run("creative_services_import", str(path))
    assert "2 unchanged" in out  # the masked key keeps the stored one
    assert list(LLMModel.objects.order_by("name").values()) == before

    LLMModel.objects.all().delete()
    run("creative_services_import", str(path))
    fields = ("name", "tier", "priority", "is_active", "temperature", "api_key_env", "api_endpoint")
    assert list(LLMModel.objects.order_by("name").values_list(*fields)) == [
        tuple(row[f] for f in fields) for row in before
    ]
    assert LLMModel.objects.get(name="fast").api_key == ""  # a masked key is never imported


def test_export_legacy_model(make_legacy, legacy_model):
    make_legacy("old")
    out, _ = run("creative_services_export", "--format", "toml")
    (entry,) = tomllib.loads(out)["models"]
    assert (entry["name"], entry["api_key"], entry["cost_per_1k_input"]) == (
        "old", "**********", "0.00015"
    )  # fmt: skip
    assert "priority" not in entry


def test_export_to_an_unwritable_path_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="cannot write"):
        run("creative_services_export", "-o", str(tmp_path / "no" / "such" / "dir.json"))


# --- usage -------------------------------------------------------------------------------------


def _days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


@pytest.fixture
def usage_rows() -> None:
    tracker = DjangoUsageTracker()
    common = {"provider": "openai", "model": "gpt-4o-mini", "tier": "standard"}
    for _ in range(3):
        tracker.record(
            llm_id=1, user_id=7, prompt_tokens=100, completion_tokens=50, cost=0.001, **common
        )
    tracker.record(
        llm_id=1,
        user_id=8,
        prompt_tokens=10,
        completion_tokens=5,
        cost="0.0000001",
        created_at=_days_ago(10),
        **common,
    )
    tracker.record(
        llm_id=2,
        user_id=8,
        provider="anthropic",
        model="claude-haiku-4-5",
        tier="economy",
        outcome="error",
        error_class="RateLimitError",
        cost=None,
    )


def test_usage_json_by_user_has_exact_costs(usage_rows):
    out, _ = run("creative_services_usage", "--by", "user", "--json")
    report = json.loads(out)
    groups = {g["key"]: g for g in report["groups"]}
    assert groups["7"] == {
        "key": "7", "calls": 3, "failures": 0, "prompt_tokens": 300, "completion_tokens": 150,
        "reasoning_tokens": 0, "total_tokens": 450, "cost": "0.003", "unpriced_calls": 0,
    }  # fmt: skip
    assert (groups["8"]["calls"], groups["8"]["failures"]) == (2, 1)
    assert (groups["8"]["cost"], groups["8"]["unpriced_calls"]) == ("0.0000001", 1)
    assert report["total"]["cost"] == "0.0030001"
    assert report["total"]["calls"] == 5
    assert [g["key"] for g in report["groups"]] == ["7", "8"]  # most expensive first


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("model", {"openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"}),
        ("tier", {"standard", "economy"}),
        ("day", {timezone.localdate().isoformat(), timezone.localdate(_days_ago(10)).isoformat()}),
    ],
)
def test_usage_groups(usage_rows, by, keys):
    out, _ = run("creative_services_usage", "--by", by, "--json")
    assert {g["key"] for g in json.loads(out)["groups"]} == keys


def test_usage_since_filters_and_the_table_has_a_total(usage_rows):
    since = timezone.localdate(_days_ago(2)).isoformat()
    out, _ = run("creative_services_usage", "--by", "tier", "--since", since)
    lines = out.splitlines()
    assert lines[0].split() == ["tier", "calls", "failures", "prompt", "completion", "total",
                                "tokens", "cost", "USD"]  # fmt: skip
    assert lines[-2].split()[:3] == ["total", "4", "1"]
    assert lines[-2].split()[-1] == "0.003"
    assert "1 call(s) without a known cost" in lines[-1]


def test_usage_bad_date_is_a_command_error():
    with pytest.raises(CommandError, match="--since must be a date"):
        run("creative_services_usage", "--since", "last week")


def test_usage_of_an_empty_table():
    out, _ = run("creative_services_usage", "--json")
    assert json.loads(out)["total"] == {
        "key": None, "calls": 0, "failures": 0, "prompt_tokens": 0, "completion_tokens": 0,
        "reasoning_tokens": 0, "total_tokens": 0, "cost": "0", "unpriced_calls": 0,
    }  # fmt: skip


# --- prune -------------------------------------------------------------------------------------


def test_prune_usage_deletes_old_rows_in_batches():
    tracker = DjangoUsageTracker()
    for i in range(5):
        tracker.record(llm_id=i, created_at=_days_ago(40))
    tracker.record(llm_id=99, created_at=_days_ago(1))

    out, _ = run("creative_services_prune_usage", "--older-than", "30", "--dry-run")
    assert "would delete 5 usage rows" in out
    assert LLMUsage.objects.count() == 6

    out, _ = run(
        "creative_services_prune_usage", "--older-than", "30", "--batch-size", "2", verbosity=2
    )
    assert "Deleted 5 usage rows" in out
    assert out.count("so far") == 3
    assert list(LLMUsage.objects.values_list("llm_ref", flat=True)) == [99]

    out, _ = run("creative_services_prune_usage", "--older-than", "30")
    assert "Deleted 0 usage rows" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--older-than", "0"], "at least 1 day"), (["--older-than", "3", "--batch-size", "0"],
     "batch-size")],
)  # fmt: skip
def test_prune_usage_rejects_bad_numbers(args, message):
    with pytest.raises(CommandError, match=message):
        run("creative_services_prune_usage", *args)


def test_prune_usage_requires_older_than(capsys):
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "creative_services_prune_usage"])
    assert exited.value.code == 2
    assert "--older-than" in capsys.readouterr().err


def test_commands_are_registered():
    from django.core.management import get_commands

    assert {
        "creative_services_check", "creative_services_export", "creative_services_import",
        "creative_services_prune_usage", "creative_services_usage",
    } <= set(get_commands())  # fmt: skip
