"""The ``creative-services`` command, run as a real subprocess against the fake provider."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from creative_services.testing.fake_provider import FakeProvider


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    clean.pop("CREATIVE_SERVICES_MODELS", None)
    return subprocess.run(
        [sys.executable, "-m", "creative_services.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )


def test_generate_prints_the_answer_and_records_usage(fake_provider: FakeProvider, tmp_path):
    fake_provider.reply("Hi there", prompt_tokens=7, completion_tokens=2)
    db = tmp_path / "usage.db"
    env = {
        "OPENAI_API_KEY": "dummy",
        "OPENAI_BASE_URL": fake_provider.base_url,
        "CREATIVE_SERVICES_USAGE_DB": str(db),
    }
    result = cli("generate", "Say hi", "--tier", "economy", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hi there\n"
    assert fake_provider.requests[0].body["model"] == "gpt-4.1-nano"
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT prompt_tokens, completion_tokens, outcome FROM usage"
        ).fetchall() == [(7, 2, "success")]


def test_generate_json(fake_provider: FakeProvider, tmp_path):
    env = {
        "OPENAI_API_KEY": "dummy",
        "OPENAI_BASE_URL": fake_provider.base_url,
        "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db"),
    }
    result = cli("generate", "hi", "--json", env=env)
    out = json.loads(result.stdout)
    assert out["content"] == "fake answer"
    assert out["entry"]["tier"] == "standard"
    assert out["usage"]["total_tokens"] == 15


def test_errors_exit_non_zero_with_a_message(fake_provider: FakeProvider, tmp_path):
    fake_provider.fail(401, "bad key", times=5)
    env = {
        "OPENAI_API_KEY": "sk-do-not-print-me-123456",
        "OPENAI_BASE_URL": fake_provider.base_url,
        "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db"),
    }
    failed = cli("generate", "hi", env=env)
    assert failed.returncode == 1
    assert "AuthenticationError" in failed.stderr
    assert "sk-do-not-print-me" not in failed.stderr + failed.stdout
    unconfigured = cli("generate", "hi", env={"CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db")})
    assert unconfigured.returncode == 2
    assert "OPENAI_API_KEY" in unconfigured.stderr


def test_models_lists_the_registry():
    result = cli("models", env={"OPENAI_API_KEY": "x"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "TIER"]
    assert any("gpt-4.1-mini" in line and "standard" in line for line in lines)


def test_models_shows_whether_each_key_is_present_never_the_key():
    result = cli(
        "models", env={"OPENAI_API_KEY": "sk-secret-value-1234567890", "OLLAMA_HOST": "x:1"}
    )
    assert "sk-secret-value" not in result.stdout
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[1:]}
    assert rows["openai-standard"].endswith("set")
    assert rows["ollama-local"].endswith("not needed")


def test_usage_summarises_the_store_by_model_and_day(fake_provider: FakeProvider, tmp_path):
    db = tmp_path / "usage.db"
    env = {
        "OPENAI_API_KEY": "dummy",
        "OPENAI_BASE_URL": fake_provider.base_url,
        "CREATIVE_SERVICES_USAGE_DB": str(db),
    }
    fake_provider.reply("a", prompt_tokens=100, completion_tokens=10, times=2)
    fake_provider.fail(400, "bad")
    assert cli("generate", "one", env=env).returncode == 0
    assert cli("generate", "two", "--tier", "premium", env=env).returncode == 0
    assert cli("generate", "three", env=env).returncode == 1

    by_model = json.loads(cli("usage", "--by", "model", "--json", env=env).stdout)
    assert by_model["gpt-4.1-mini"]["calls"] == 2
    assert by_model["gpt-4.1-mini"]["failed"] == 1
    assert by_model["gpt-4.1"]["prompt"] == 100
    assert Decimal(by_model["gpt-4.1"]["cost"]) == (
        Decimal(100) * Decimal("0.000002") + Decimal(10) * Decimal("0.000008")
    )
    table = cli("usage", "--by", "day", env=env)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["DAY", "CALLS", "FAILED"]
    assert table.stdout.splitlines()[1].split()[1] == "3"
    future = cli("usage", "--since", "2999-01-01", "--json", env=env)
    assert json.loads(future.stdout) == {}


def test_doctor_says_what_is_missing_and_what_to_do(tmp_path):
    broken = cli("doctor", env={"CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db")})
    assert broken.returncode == 2
    assert "OPENAI_API_KEY" in broken.stdout
    fine = cli(
        "doctor",
        env={
            "OPENAI_API_KEY": "sk-hidden-123456789012345",
            "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db"),
        },
    )
    assert fine.returncode == 0, fine.stdout
    assert "standard: openai-standard (openai/gpt-4.1-mini, key set)" in fine.stdout
    assert "creative-services generate" in fine.stdout
    assert "sk-hidden" not in fine.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "creative-services"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("generate", "models", "usage", "doctor"):
        assert command in result.stdout
