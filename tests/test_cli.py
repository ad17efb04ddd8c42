"""The ``creative-services`` command, run as a real subprocess against the fake provider."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

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
