"""override_registry() reaches the bridges and the OpenAI drop-in; capture_usage() sees every
record, sync and async, successes and failures."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from creative_services import ConfigurationError, DictRegistry, InMemoryUsageTracker, RetryPolicy
from creative_services.bridges import (
    AsyncBFAgentLLMBridge,
    BFAgentLLMBridge,
    default_registry,
    default_tracker,
)
from creative_services.exceptions import LLMError
from creative_services.openai_compat import OpenAI
from creative_services.registry.dict import MODELS_ENV
from creative_services.testing import FakeLLM, capture_usage, override_registry


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _no_configured_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")) or name in ("OLLAMA_HOST", MODELS_ENV):
            monkeypatch.delenv(name)


def test_bridge_uses_the_overriding_fake(fake: FakeLLM) -> None:
    fake.reply("from the fake")
    with override_registry(fake) as registry:
        assert default_registry() is registry
        assert BFAgentLLMBridge().generate_text("hi", tier="premium") == "from the fake"
    with pytest.raises(ConfigurationError):  # outside: the usual default, nothing configured
        default_registry()
    assert fake.prompts == ["hi"]


def test_override_defaults_to_an_in_memory_tracker(fake: FakeLLM) -> None:
    override = override_registry(fake)
    with override:
        assert isinstance(default_tracker(), InMemoryUsageTracker)
        BFAgentLLMBridge().generate_text("hi")
        assert default_tracker() is override.tracker
    assert isinstance(override.tracker, InMemoryUsageTracker)
    assert len(override.tracker.records) == 1


def test_override_with_entries_and_given_tracker(fake: FakeLLM) -> None:
    tracker = InMemoryUsageTracker()
    with override_registry(fake.entries(), tracker=tracker):
        assert default_tracker() is tracker
        assert (
            OpenAI()
            .chat.completions.create(model="standard", messages=[{"role": "user", "content": "hi"}])
            .choices[0]
            .message.content
            == "fake answer"
        )
    with override_registry(fake.entry("economy")) as registry:
        assert [e.tier.value for e in registry.list_active()] == ["economy"]


def test_overrides_nest(fake: FakeLLM) -> None:
    outer, inner = DictRegistry(fake.entries()), DictRegistry([fake.entry()])
    with override_registry(outer):
        with override_registry(inner):
            assert default_registry() is inner
        assert default_registry() is outer


def test_override_starts_and_stops_a_fake_it_was_given_stopped() -> None:
    fake = FakeLLM()
    with override_registry(fake):
        assert fake.running
        assert BFAgentLLMBridge().generate_text("hi") == "fake answer"
    assert not fake.running


def test_override_is_seen_by_other_threads(fake: FakeLLM) -> None:
    seen: list[object] = []
    with override_registry(fake) as registry:
        thread = threading.Thread(target=lambda: seen.append(default_registry()))
        thread.start()
        thread.join()
    assert seen == [registry]


@override_registry(DictRegistry([]))
def test_decorates_sync_functions() -> None:
    assert default_registry().list_active() == []


@override_registry(DictRegistry([]))
async def test_decorates_async_functions() -> None:
    assert default_registry().list_active() == []


async def test_decorator_applies_afresh_for_each_call(fake: FakeLLM) -> None:
    @override_registry(fake)
    async def ask() -> str:
        return await AsyncBFAgentLLMBridge().generate_text("hi")

    fake.reply("one")
    fake.reply("two")
    assert [await ask(), await ask()] == ["one", "two"]
    with pytest.raises(ConfigurationError):  # between the calls: the usual default
        default_registry()


async def test_capture_usage_collects_async_and_sync_records(fake: FakeLLM) -> None:
    fake.reply("a", prompt_tokens=1000, completion_tokens=0)
    fake.reply("b", prompt_tokens=0, completion_tokens=1000)
    fake.server_error(500)
    client = fake.client(retry_policy=RetryPolicy(max_retries=0))
    with capture_usage() as usage:
        await client.generate("hi")
        client.generate_sync("hi")
        with pytest.raises(LLMError):
            await client.generate("hi")
    assert len(usage) == 3
    assert usage.outcomes[:2] == ["success", "success"]
    assert usage.outcomes[2] != "success"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1000, 1000, 2000)
    assert usage.cost == Decimal("0.003")
    assert usage.unpriced == 1  # the failure
    await client.generate("after")
    assert len(usage) == 3  # nothing after the block


async def test_capture_usage_sees_bridge_and_stream_records(fake: FakeLLM) -> None:
    fake.reply("plain", prompt_tokens=4, completion_tokens=1)
    fake.stream(["x", "y"], prompt_tokens=3, completion_tokens=2)
    with override_registry(fake), capture_usage() as usage:
        assert await AsyncBFAgentLLMBridge().generate_text("hi") == "plain"
        stream = fake.client().stream("hi")
        assert "".join([t async for t in stream]) == "xy"
    assert len(usage) == 2
    assert usage.total_tokens == 10
    assert {record.entry_name for record in usage} == {"fake-standard"}
