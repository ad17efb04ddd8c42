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
        "OPENAI_API_KEY": "sk-" + "do-not-print-me-123456",
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
        "models", env={"OPENAI_API_KEY": "sk-" + "secret-value-1234567890", "OLLAMA_HOST": "x:1"}
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
            "OPENAI_API_KEY": "sk-" + "hidden-123456789012345",
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


# --- cassettes lint -----------------------------------------------------------------------------

REPO_CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"


def test_cassettes_lint_passes_the_repositorys_cassettes():
    result = cli("cassettes", "lint", str(REPO_CASSETTES), env={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "clean" in result.stderr


def test_cassettes_lint_names_file_and_line_and_exits_1(tmp_path):
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(
        "interactions:\n- request:\n    headers:\n      x-api-key:\n      - opaque-value-1\n"
        "    uri: https://generativelanguage.googleapis.com/v1beta/m?key=opaque\n",
        encoding="utf-8",
    )
    result = cli("cassettes", "lint", str(leaky), env={})
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{leaky}:4: auth header 'x-api-key' holds a value",
        f"{leaky}:6: query parameter 'key'",
    ]
    assert "opaque" not in result.stdout  # never the value itself


# --- fake-provider ------------------------------------------------------------------------------


def _post(url: str, body: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    import httpx

    response = httpx.post(url, json=body, timeout=10)
    return response.status_code, dict(response.headers), response.content


def test_fake_provider_serves_its_script_until_interrupted():
    import signal

    process = subprocess.Popen(
        [
            sys.executable, "-m", "creative_services.cli", "fake-provider", "--port", "0",
            "--fail", "429:2", "--retry-after", "3", "--reply", "scripted",
            "--stream", "Hel|lo", "--default", "default answer",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("fake provider listening on http://127.0.0.1:"), first
        base = first.split()[-1]
        chat = base + "/chat/completions"
        for _ in range(2):
            status, headers, _ = _post(chat, {"messages": []})
            assert (status, headers.get("retry-after")) == (429, "3")
        status, _, body = _post(chat, {"messages": []})
        assert json.loads(body)["choices"][0]["message"]["content"] == "scripted"
        _, headers, body = _post(chat, {"stream": True})
        assert headers["content-type"] == "text/event-stream"
        assert b'"content": "Hel"' in body
        assert body.rstrip().endswith(b"data: [DONE]")
        _, _, body = _post(base + "/messages", {"model": "claude"})
        assert json.loads(body)["content"][0]["text"] == "default answer"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "served 5 request(s)" in out


def test_fake_provider_rejects_a_malformed_fail_option():
    result = cli("fake-provider", "--fail", "often", env={})
    assert result.returncode == 2
    assert "STATUS[:TIMES]" in result.stderr


def _env(fake: FakeProvider, tmp_path: Path) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "dummy",
        "OPENAI_BASE_URL": fake.base_url,
        "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db"),
    }


def test_generate_stream_prints_text_as_it_arrives(fake_provider: FakeProvider, tmp_path):
    words = ["alpha ", "beta ", "gamma ", "delta ", "omega"]
    fake_provider.stream(words, prompt_tokens=4, completion_tokens=5, chunk_delay=0.6)
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process = subprocess.Popen(
        [sys.executable, "-m", "creative_services.cli", "generate", "hi", "--stream"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**clean, **_env(fake_provider, tmp_path)},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.read(len("alpha "))
        assert first == b"alpha "
        still_streaming = process.poll() is None  # the rest is ~2 s away
        rest, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert still_streaming
    assert process.returncode == 0, err
    assert (first + rest).decode() == "".join(words) + "\n"
    with sqlite3.connect(tmp_path / "u.db") as conn:
        assert conn.execute("SELECT prompt_tokens, completion_tokens FROM usage").fetchall() == [
            (4, 5)
        ]


def test_generate_stream_failing_midway_exits_1_after_the_text_so_far(
    fake_provider: FakeProvider, tmp_path
):
    fake_provider.stream(["one ", "two ", "three"], fail_after=2)
    result = cli("generate", "hi", "--stream", env=_env(fake_provider, tmp_path))
    assert result.returncode == 1
    assert result.stdout.startswith("one two ")
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert result.stderr.startswith("creative-services: ")
    with sqlite3.connect(tmp_path / "u.db") as conn:
        assert conn.execute("SELECT outcome, usage_estimated FROM usage").fetchall() == [
            ("error", 1)
        ]


def test_generate_stream_json_prints_the_whole_response(fake_provider: FakeProvider, tmp_path):
    fake_provider.stream(["a", "b"], prompt_tokens=3, completion_tokens=2)
    result = cli("generate", "hi", "--stream", "--json", env=_env(fake_provider, tmp_path))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["content"], out["usage"]["total_tokens"]) == ("ab", 5)


def test_usage_counts_cache_hits_apart_from_tokens_used(tmp_path):
    from creative_services import SQLiteUsageTracker

    db = tmp_path / "usage.db"
    tracker = SQLiteUsageTracker(str(db))
    common = {"llm_id": 1, "model": "gpt-4o", "tier": "standard", "cost_source": "entry"}
    tracker.record(**common, prompt_tokens=100, completion_tokens=10, cost="0.002")
    tracker.record(
        **{**common, "cost_source": "cache"},
        prompt_tokens=100, completion_tokens=10, cost="0", cache_hit=True,
    )  # fmt: skip
    out = json.loads(cli("usage", "--json", env={"CREATIVE_SERVICES_USAGE_DB": str(db)}).stdout)[
        "gpt-4o"
    ]
    assert (out["calls"], out["cached"], out["prompt"], out["completion"]) == (2, 1, 100, 10)
    assert Decimal(out["cost"]) == Decimal("0.002")
