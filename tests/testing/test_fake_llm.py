"""FakeLLM: scripted answers, usage, latency and failures, through the real client and LiteLLM."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from creative_services import (
    DictRegistry,
    LLMTier,
    LLMTimeoutError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from creative_services.exceptions import LLMError
from creative_services.testing import FAKE_API_KEY, FakeClock, FakeLLM


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def test_entries_point_at_the_fake_one_per_tier(fake: FakeLLM) -> None:
    entries = fake.entries()
    assert [e.tier for e in entries] == list(LLMTier)
    assert {e.api_endpoint for e in entries} == {fake.base_url}
    assert all(e.api_key.get_secret_value() == FAKE_API_KEY for e in entries)
    assert fake.entry("premium", name="mine", priority=3).name == "mine"


def test_scripted_answer_usage_and_cost(fake: FakeLLM) -> None:
    fake.reply("Bonjour", prompt_tokens=1000, completion_tokens=500)
    response = fake.client().generate_sync("Say hello in French", tier="economy")
    assert response.content == "Bonjour"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1000, 500)
    assert response.cost == Decimal("0.002")  # 1k in at 0.001 + 0.5k out at 0.002
    assert response.entry.tier is LLMTier.ECONOMY
    assert fake.prompts == ["Say hello in French"]
    assert fake.pending == 0


async def test_default_answer_when_nothing_is_scripted() -> None:
    with FakeLLM(default_answer="always this") as fake:
        response = await fake.client().generate("hi")
    assert response.content == "always this"


async def test_provider_reported_cost_wins(fake: FakeLLM) -> None:
    fake.reply("x", cost="0.25")
    response = await fake.client().generate("hi")
    assert response.cost == Decimal("0.25")


async def test_latency_is_real(fake: FakeLLM) -> None:
    fake.reply("slow", latency=0.3)
    started = time.perf_counter()
    await fake.client().generate("hi")
    assert time.perf_counter() - started >= 0.3


async def test_rate_limit_with_retry_after_is_retried(fake: FakeLLM) -> None:
    clock = FakeClock()
    fake.rate_limit(retry_after=2)
    fake.reply("after the wait")
    response = await fake.client(clock=clock, sleep=clock.sleep).generate("hi")
    assert response.content == "after the wait"
    assert response.attempts == 2
    assert clock.sleeps
    assert clock.sleeps[0] >= 2
    assert fake.requests[0].headers["authorization"] == f"Bearer {FAKE_API_KEY}"


async def test_rate_limit_that_persists_raises(fake: FakeLLM) -> None:
    fake.rate_limit(retry_after=0, times=5)
    client = fake.client(retry_policy=RetryPolicy(max_retries=1, jitter=0.0))
    with pytest.raises(RateLimitError):
        await client.generate("hi", tier="standard")


async def test_server_error_raises_unavailable(fake: FakeLLM) -> None:
    fake.server_error(503, times=5)
    client = fake.client(retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(ServiceUnavailableError):
        await client.generate("hi")


async def test_timeout_raises_timeout_error(fake: FakeLLM) -> None:
    fake.timeout(after=30, times=5)
    client = fake.client(retry_policy=RetryPolicy(max_retries=0))
    started = time.perf_counter()
    with pytest.raises(LLMTimeoutError):
        await client.generate("hi", timeout=0.5)
    assert time.perf_counter() - started < 10


async def test_disconnect_is_an_error(fake: FakeLLM) -> None:
    fake.disconnect(times=5)
    client = fake.client(retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(LLMError):
        await client.generate("hi")


@pytest.mark.parametrize("provider", ["openai", "openai_compatible", "anthropic"])
async def test_every_wire_format_streams(provider: str) -> None:
    with FakeLLM(provider=provider) as fake:
        fake.stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)
        stream = fake.client().stream("hi")
        text = "".join([piece async for piece in stream])
    assert text == "Hello"
    assert stream.response.usage.total_tokens == 7


def test_fake_entries_mix_with_other_entries(fake: FakeLLM) -> None:
    registry = DictRegistry([*fake.entries(), fake.entry("standard", name="backup", priority=1)])
    assert len(registry.list_active()) == 5
