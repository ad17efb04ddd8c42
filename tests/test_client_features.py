"""Structured output, the response cache and tier escalation, end to end through the client
against the loopback fake provider (the pure parts: test_structured.py, test_cache.py,
test_routing.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from creative_services import (
    AllModelsFailedError,
    BudgetLimit,
    ContentPolicyError,
    ContextWindowExceededError,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InMemoryResponseCache,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMEntry,
    NoActiveEntryError,
    RetryPolicy,
    ServiceUnavailableError,
    StructuredOutputError,
)
from creative_services.testing.cassettes import use_cassette
from creative_services.testing.fake_provider import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
INDEX = json.loads((ROOT / "cassettes" / "index.json").read_text("utf-8"))
RECORDED = INDEX["openai-json-schema-output"]


class Step(BaseModel):
    explanation: str
    output: str


class MathResponse(BaseModel):
    steps: list[Step]
    final_answer: str


def _entry(fake: FakeProvider, name: str, tier: str, **overrides: Any) -> LLMEntry:
    fields: dict[str, Any] = {
        "name": name,
        "provider": "openai",
        "model_name": "gpt-4o",
        "tier": tier,
        "api_key": f"key-{name}",
        "api_endpoint": fake.base_url,
        "cost_per_1k_input": "1",
        "cost_per_1k_output": "2",
    }
    fields.update(overrides)
    return LLMEntry(**fields)


def _client(*entries: LLMEntry, **kwargs: Any) -> DynamicLLMClient:
    kwargs.setdefault("retry_policy", RetryPolicy(max_retries=0))
    return DynamicLLMClient(DictRegistry(list(entries)), tracker=InMemoryUsageTracker(), **kwargs)


# --- structured output --------------------------------------------------------------------


async def test_recorded_json_schema_answer_is_parsed_into_the_model() -> None:
    entry = LLMEntry(
        name="gpt", provider="openai", model_name=RECORDED["model"], tier="standard",
        api_key="test-key",
    )  # fmt: skip
    client = DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())
    with use_cassette(ROOT / "cassettes" / RECORDED["cassette"]):
        response = await client.generate(prompt="solve 8x + 31 = 2", response_format=MathResponse)

    assert isinstance(response.parsed, MathResponse)
    assert response.parsed == MathResponse.model_validate_json(RECORDED["expect"]["content"])
    assert response.content == RECORDED["expect"]["content"]


async def test_response_format_is_sent_in_openai_form(fake_provider: FakeProvider) -> None:
    fake_provider.reply(RECORDED["expect"]["content"])
    client = _client(_entry(fake_provider, "std", "standard"))
    response = await client.generate(prompt="solve", response_format=MathResponse)

    sent = fake_provider.requests[0].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["required"] == ["steps", "final_answer"]
    assert (
        response.parsed.final_answer
        == MathResponse.model_validate_json(RECORDED["expect"]["content"]).final_answer
    )


async def test_schema_dict_gives_validated_json(fake_provider: FakeProvider) -> None:
    fake_provider.reply('```json\n{"city": "Paris", "population": 2100000}\n```')
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    client = _client(_entry(fake_provider, "std", "standard"))
    response = await client.generate(prompt="Capital of France?", response_format=schema)
    assert response.parsed == {"city": "Paris", "population": 2100000}


async def test_invalid_answer_raises_with_the_raw_text_and_is_still_recorded(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.reply('{"steps": [], "final_answer": 42}', prompt_tokens=9, completion_tokens=4)
    client = _client(_entry(fake_provider, "std", "standard"))
    with pytest.raises(StructuredOutputError) as info:
        await client.generate(prompt="solve", response_format=MathResponse)

    assert info.value.raw == '{"steps": [], "final_answer": 42}'
    assert "final_answer" in str(info.value)
    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert (record.outcome, record.error_class) == ("error", "StructuredOutputError")
    assert (record.prompt_tokens, record.completion_tokens) == (9, 4)  # the tokens were billed
    assert record.cost == Decimal("0.017")


async def test_bad_response_format_fails_before_any_request(fake_provider: FakeProvider) -> None:
    client = _client(_entry(fake_provider, "std", "standard"))
    with pytest.raises(InvalidRequestError):
        await client.generate(prompt="x", response_format="json please")
    assert fake_provider.requests == []


# --- response cache -------------------------------------------------------------------------


async def test_cache_hit_makes_no_call_costs_zero_and_is_recorded(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.reply("cached words", prompt_tokens=11, completion_tokens=2)
    budget = InMemoryBudget([BudgetLimit("global", "day", Decimal("10"))])
    client = _client(
        _entry(fake_provider, "std", "standard"), cache=InMemoryResponseCache(), budget=budget
    )
    first = await client.generate(prompt="same question", temperature=0)
    second = await client.generate(prompt="same question", temperature=0)
    third = await client.generate(prompt="same question", temperature=0, cache=False)
    other = await client.generate(prompt="same question", temperature=0.5)

    assert len(fake_provider.requests) == 3  # first, cache=False, different temperature
    assert (first.cache_hit, second.cache_hit, third.cache_hit, other.cache_hit) == (
        False, True, False, False,
    )  # fmt: skip
    assert second.content == "cached words"
    assert (second.cost, second.cost_source, second.attempts) == (Decimal(0), "cache", 0)
    records = list(client.tracker.records)  # type: ignore[attr-defined]
    assert [r.cache_hit for r in records] == [False, True, False, False]
    assert records[1].cost == 0
    assert records[1].prompt_tokens == 11  # the tokens the hit saved
    billed = sum(r.cost for r in records if not r.cache_hit)
    assert sum(budget.spent.values()) == billed  # the hit reserved and spent nothing


async def test_streams_bypass_the_cache(fake_provider: FakeProvider) -> None:
    client = _client(_entry(fake_provider, "std", "standard"), cache=InMemoryResponseCache())
    await client.generate(prompt="q")
    text = "".join([t async for t in client.stream(prompt="q")])
    assert text == "fake answer"
    assert len(fake_provider.requests) == 2


# --- tier escalation ------------------------------------------------------------------------


async def test_escalation_climbs_to_the_next_tier_when_a_tier_fails(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.fail(503)
    fake_provider.reply("from standard")
    client = _client(
        _entry(fake_provider, "eco", "economy"),
        _entry(fake_provider, "std", "standard"),
        _entry(fake_provider, "prem", "premium"),
        _entry(fake_provider, "llama", "local"),
    )
    response = await client.generate(prompt="hi", tier="economy", escalate=True)

    assert response.entry.name == "std"
    assert [e.name for e in response.tried] == ["eco"]
    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert (record.entry_name, record.tier, record.attempts) == ("std", "standard", 2)


async def test_escalation_is_off_by_default_and_never_leaves_local(
    fake_provider: FakeProvider,
) -> None:
    client = _client(
        _entry(fake_provider, "eco", "economy"), _entry(fake_provider, "std", "standard")
    )
    fake_provider.fail(503)
    with pytest.raises(Exception, match="503"):
        await client.generate(prompt="hi", tier="economy")
    assert len(fake_provider.requests) == 1

    local_only = _client(
        _entry(fake_provider, "llama", "local"), _entry(fake_provider, "std", "standard")
    )
    fake_provider.clear()
    fake_provider.fail(503)
    with pytest.raises(Exception, match="503"):
        await local_only.generate(prompt="hi", tier="local", escalate=True)
    assert len(fake_provider.requests) == 1


async def test_explicit_escalation_path_and_stops_on_content_policy(
    fake_provider: FakeProvider,
) -> None:
    client = _client(
        _entry(fake_provider, "eco", "economy"),
        _entry(fake_provider, "prem", "premium"),
        _entry(fake_provider, "llama", "local"),
    )
    fake_provider.fail(503)
    fake_provider.reply("local answer")
    response = await client.generate(prompt="hi", tier="economy", escalate=["local"])
    assert response.entry.name == "llama"

    fake_provider.fail(400, "flagged", code="content_policy_violation")
    with pytest.raises(ContentPolicyError):
        await client.generate(prompt="bad", tier="economy", escalate=True)
    assert fake_provider.requests[-1].body["model"] == "gpt-4o"
    assert len(fake_provider.requests) == 3  # premium was not asked to say it too


async def test_escalation_arguments_are_checked(fake_provider: FakeProvider) -> None:
    client = _client(_entry(fake_provider, "eco", "economy"))
    with pytest.raises(InvalidRequestError, match="escalate"):
        await client.generate(prompt="hi", llm_name="eco", escalate=True)
    with pytest.raises(InvalidRequestError):
        await client.generate(prompt="hi", tier="economy", escalate=["gold"])
    assert fake_provider.requests == []
    # nothing above economy in this registry: escalation adds nothing, the tier must exist
    with pytest.raises(NoActiveEntryError):
        await client.generate(prompt="hi", tier="premium", escalate=True)


async def test_whole_escalation_failing_lists_every_entry(fake_provider: FakeProvider) -> None:
    fake_provider.fail(503, times=2)
    client = _client(
        _entry(fake_provider, "eco", "economy"), _entry(fake_provider, "std", "standard")
    )
    with pytest.raises(AllModelsFailedError) as info:
        await client.generate(prompt="hi", tier="economy", escalate=True)
    assert [f.entry.name for f in info.value.failures if f.entry] == ["eco", "std"]


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("content_policy_violation", ContentPolicyError),
        ("context_length_exceeded", ContextWindowExceededError),
    ],
)
async def test_provider_error_codes_pick_the_error_class(
    fake_provider: FakeProvider, code: str, error: type[Exception]
) -> None:
    fake_provider.fail(400, "rejected", code=code)
    client = _client(_entry(fake_provider, "std", "standard"))
    with pytest.raises(error):
        await client.generate(prompt="hi")


def test_asking_a_stream_for_the_cache_is_refused(fake_provider: FakeProvider) -> None:
    client = _client(_entry(fake_provider, "std", "standard"), cache=InMemoryResponseCache())
    with pytest.raises(InvalidRequestError, match="streams are not cached"):
        client.stream_sync(prompt="q", cache=True)
    assert fake_provider.requests == []


async def test_escalation_reserves_per_tier_reached(fake_provider: FakeProvider) -> None:
    budget = InMemoryBudget([BudgetLimit("global", "day", Decimal("0.10"))])
    client = _client(
        _entry(fake_provider, "eco", "economy", cost_per_1k_input="0.001",
               cost_per_1k_output="0.002"),
        _entry(fake_provider, "prem", "premium", cost_per_1k_input="60", cost_per_1k_output="120"),
        budget=budget,
    )  # fmt: skip
    # Premium's worst case (~$120) is far over the budget: economy alone still gets through.
    response = await client.generate(prompt="hi", tier="economy", escalate=True, max_tokens=1000)
    assert response.entry.name == "eco"

    # When economy fails, the budget has no room to escalate: economy's error, with a note.
    fake_provider.fail(503)
    with pytest.raises(ServiceUnavailableError) as info:
        await client.generate(prompt="hi", tier="economy", escalate=True, max_tokens=1000)
    assert any("not escalated further" in note for note in info.value.__notes__)
    assert [r.body["model"] for r in fake_provider.requests] == ["gpt-4o", "gpt-4o"]
    assert all(v == 0 for v in budget.reserved.values())  # every reservation settled or released
    assert sum(budget.spent.values()) == response.cost


async def test_captured_usage_counts_cache_hits_apart(fake_provider: FakeProvider) -> None:
    from creative_services.testing import capture_usage

    client = _client(_entry(fake_provider, "std", "standard"), cache=InMemoryResponseCache())
    with capture_usage() as usage:
        await client.generate(prompt="same")
        await client.generate(prompt="same")
    assert (len(usage), usage.cache_hits, usage.total_tokens) == (2, 1, 15)
