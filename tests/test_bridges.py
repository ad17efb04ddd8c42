"""The BFAgent bridges, including the seed's examples verbatim, against the fake provider."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

import pytest

from creative_services import DictRegistry, InMemoryUsageTracker, LLMEntry
from creative_services.bridges import AsyncBFAgentLLMBridge, BFAgentLLMBridge
from creative_services.testing.fake_provider import FakeProvider


@pytest.fixture
def env(fake_provider: FakeProvider, tmp_path, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "CREATIVE_SERVICES_MODELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_provider.base_url)
    monkeypatch.setenv("CREATIVE_SERVICES_USAGE_DB", str(tmp_path / "usage.db"))
    return tmp_path / "usage.db"


def test_seed_sync_example_verbatim(env, fake_provider):
    fake_provider.reply("Bonjour")
    text = BFAgentLLMBridge().generate_text(prompt="…", system_prompt="…", tier="standard")
    assert text == "Bonjour"
    assert isinstance(text, str)
    body = fake_provider.requests[0].body
    assert body["messages"] == [
        {"role": "system", "content": "…"},
        {"role": "user", "content": "…"},
    ]
    with sqlite3.connect(env) as conn:  # the default tracker is the embedded usage store
        assert conn.execute("SELECT outcome FROM usage").fetchall() == [("success",)]


async def test_seed_async_example_verbatim(env, fake_provider):
    fake_provider.reply("premium answer")
    assert await AsyncBFAgentLLMBridge().generate_text(prompt="…", tier="premium") == (
        "premium answer"
    )
    assert fake_provider.requests[0].body["model"] == "gpt-4.1"


def injected(fake: FakeProvider) -> BFAgentLLMBridge:
    entry = LLMEntry(
        name="fake", provider="openai", model_name="m", api_key="k", api_endpoint=fake.base_url
    )
    return BFAgentLLMBridge(DictRegistry([entry]), tracker=InMemoryUsageTracker())


def _client_side_threads() -> set[str]:
    """Live threads, without the fake server's per-connection handlers."""
    return {t.name for t in threading.enumerate() if "process_request_thread" not in t.name}


def test_sync_bridge_from_ten_threads_and_a_hundred_times_in_a_row(fake_provider):
    bridge = injected(fake_provider)
    threads_before = _client_side_threads()
    for _ in range(100):
        assert bridge.generate_text(prompt="hi") == "fake answer"
    results: list[str] = []
    workers = [
        threading.Thread(target=lambda: results.append(bridge.generate_text(prompt="hi")))
        for _ in range(10)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert results == ["fake answer"] * 10
    assert len(fake_provider.requests) == 110
    # no thread (or loop) per call: the library's loop thread, plus its default executor
    # (DNS lookups, the first import), which asyncio bounds at min(32, cpus + 4)
    new = _client_side_threads() - threads_before
    assert {n for n in new if not n.startswith("asyncio_")} <= {"creative-services-loop"}
    assert len(new) <= 1 + min(32, (os.cpu_count() or 1) + 4)
    tracker = bridge.client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    assert tracker.total.calls == 110


def test_sync_bridge_inside_a_running_event_loop(fake_provider):
    bridge = injected(fake_provider)

    async def async_view() -> str:
        return bridge.generate_text(prompt="hi")  # BFAgent calls it from async code too

    assert asyncio.run(async_view()) == "fake answer"
    assert asyncio.run(async_view()) == "fake answer"


def test_bridge_takes_a_client_or_parts_not_both(fake_provider):
    bridge = injected(fake_provider)
    with pytest.raises(TypeError):
        BFAgentLLMBridge(DictRegistry([]), client=bridge.client)


def test_script_using_the_bridge_exits_cleanly(run_python, fake_provider, tmp_path):
    result = run_python(
        """
        import asyncio
        from creative_services.bridges import AsyncBFAgentLLMBridge, BFAgentLLMBridge
        print(BFAgentLLMBridge().generate_text(prompt="a", tier="standard"))
        print(asyncio.run(AsyncBFAgentLLMBridge().generate_text(prompt="b", tier="premium")))
        print(BFAgentLLMBridge().generate_text(prompt="c", tier="economy"))
        """,
        {
            "OPENAI_API_KEY": "dummy",
            "OPENAI_BASE_URL": fake_provider.base_url,
            "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db"),
        },
        "-W",
        "default",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fake", "answer"] * 3
    assert result.stderr == ""


def test_seed_import_path_loads_no_framework(run_python):
    result = run_python(
        """
        import sys
        from creative_services.adapters import AsyncBFAgentLLMBridge, BFAgentLLMBridge
        from creative_services import bridges
        loaded = sorted(m for m in ("django", "litellm") if m in sys.modules)
        # the original package's methods live on a subclass (creative_services._compat.bfagent)
        print(issubclass(BFAgentLLMBridge, bridges.BFAgentLLMBridge), loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "[]"]
