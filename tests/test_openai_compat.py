"""The OpenAI drop-in: the "Before" code runs with only the import and constructor changed."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from creative_services import (
    DictRegistry,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMEntry,
    UnknownModelError,
)
from creative_services.openai_compat import AsyncOpenAI, OpenAI, resolve_model
from creative_services.testing.cassettes import use_cassette
from creative_services.testing.fake_provider import FakeProvider

BEFORE = """
import openai
client = openai.OpenAI()
completion = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[
        {"role": "system", "content": "You are a poet."},
        {"role": "user", "content": "Write a haiku about tests."},
    ],
    max_tokens=60,
)
print(completion.choices[0].message.content)
print(completion.usage.prompt_tokens, completion.usage.completion_tokens)
"""


def test_seed_before_code_runs_with_only_import_and_constructor_changed(
    run_python, fake_provider: FakeProvider, tmp_path
):
    after = BEFORE.replace("import openai", "from creative_services.openai_compat import OpenAI")
    after = after.replace("openai.OpenAI()", "OpenAI()")
    assert after.count("\n") == BEFORE.count("\n")
    fake_provider.reply("Green dots in a row", prompt_tokens=21, completion_tokens=9)
    result = run_python(
        after,
        {
            "OPENAI_API_KEY": "dummy",
            "OPENAI_BASE_URL": fake_provider.base_url,
            "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "u.db"),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Green dots in a row", "21 9"]
    sent = fake_provider.requests[0].body
    assert sent["model"] == "gpt-4o-mini"  # exactly the model asked for, via the openai entry
    assert sent["max_tokens"] == 60


def registry(fake: FakeProvider) -> DictRegistry:
    return DictRegistry(
        [
            LLMEntry(name="cheap", provider="openai", model_name="gpt-4.1-nano", tier="economy",
                     api_key="k", api_endpoint=fake.base_url),
            LLMEntry(name="main", provider="openai", model_name="gpt-4.1-mini", tier="standard",
                     api_key="k", api_endpoint=fake.base_url),
        ]
    )  # fmt: skip


def test_model_may_be_a_tier_an_entry_name_or_a_model_id(fake_provider):
    reg = registry(fake_provider)
    assert resolve_model(reg, "economy") == {"tier": "economy"}
    assert resolve_model(reg, "STANDARD") == {"tier": "standard"}
    assert resolve_model(reg, "main") == {"llm_name": "main"}
    assert resolve_model(reg, "gpt-4.1-nano") == {"llm_name": "cheap"}
    assert resolve_model(reg, "openai/gpt-4.1-mini") == {"llm_name": "main"}
    adhoc = resolve_model(reg, "gpt-4o")
    assert isinstance(adhoc, LLMEntry)
    assert (adhoc.provider, adhoc.model_name, adhoc.cost_per_1k_input) == ("openai", "gpt-4o", None)
    with pytest.raises(UnknownModelError, match="claude-sonnet-4-5"):
        resolve_model(reg, "claude-sonnet-4-5")  # no anthropic entry: never a substitute


def test_completion_object_and_usage_record(fake_provider):
    tracker = InMemoryUsageTracker()
    client = OpenAI(registry(fake_provider), tracker=tracker)
    fake_provider.reply("hello", prompt_tokens=4, completion_tokens=2)
    completion = client.chat.completions.create(
        model="standard", messages=[{"role": "user", "content": "hi"}], user="u-9", seed=3
    )
    from openai.types.chat import ChatCompletion

    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "hello"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (4, 6)
    assert fake_provider.requests[0].body["seed"] == 3
    [record] = tracker.records
    assert (record.user_id, record.entry_name, record.outcome) == ("u-9", "main", "success")


async def test_async_drop_in(fake_provider):
    client = AsyncOpenAI(registry(fake_provider), tracker=InMemoryUsageTracker())
    completion = await client.chat.completions.create(
        model="economy", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "fake answer"
    assert fake_provider.requests[0].body["model"] == "gpt-4.1-nano"


def test_bad_options_fail_as_the_sdks_bad_request_before_any_call(fake_provider):
    client = OpenAI(registry(fake_provider), tracker=InMemoryUsageTracker())
    for bad in ({"n": 2, "stream": True}, {"stream": True, "stream_options": "usage"}):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="standard", messages=[{"role": "user", "content": "hi"}], **bad
            )
        assert isinstance(caught.value.creative_services_error, InvalidRequestError)
    assert fake_provider.requests == []


# --- stream=True, replayed from a recorded OpenAI stream ------------------------------------

STREAM_CASSETTE = (
    Path(__file__).resolve().parent.parent / "cassettes/openai/openai-stream-include-usage.yaml"
)


def _recorded_registry() -> DictRegistry:
    return DictRegistry(
        [LLMEntry(name="gpt4", provider="openai", model_name="gpt-4", tier="standard",
                  api_key="test-key")]
    )  # fmt: skip


def test_stream_yields_openai_chunks_and_records_usage():
    tracker = InMemoryUsageTracker()
    client = OpenAI(_recorded_registry(), tracker=tracker)
    with use_cassette(STREAM_CASSETTE):
        stream = client.chat.completions.create(
            model="gpt-4",
            messages=[{"role": "user", "content": "Say this is a test"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)

    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == '"This is a test."'
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 5)
    [record] = tracker.records
    assert (record.prompt_tokens, record.completion_tokens, record.outcome) == (12, 5, "success")


async def test_async_stream_without_usage_option_has_no_usage_chunk():
    tracker = InMemoryUsageTracker()
    client = AsyncOpenAI(_recorded_registry(), tracker=tracker)
    with use_cassette(STREAM_CASSETTE):
        stream = await client.chat.completions.create(
            model="standard", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == '"This is a test."'
    assert len(tracker.records) == 1
    assert tracker.records[0].completion_tokens == 5


def test_a_model_no_entry_serves_borrows_only_the_providers_key_and_endpoint(fake_provider):
    reg = DictRegistry(
        [LLMEntry(id=7, name="cheap", provider="openai", model_name="gpt-4o-mini",
                  tier="economy", api_key="k", api_endpoint=fake_provider.base_url,
                  temperature=0.2, extra_params={"seed": 42}, cost_per_1k_input="0.1",
                  cost_per_1k_output="0.2")]
    )  # fmt: skip
    tracker = InMemoryUsageTracker()
    client = OpenAI(reg, tracker=tracker)
    client.chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}]
    )

    body = fake_provider.requests[0].body
    assert body["model"] == "gpt-4o"
    assert "seed" not in body  # the cheap entry's extra parameters stay with it
    assert "temperature" not in body  # nothing the caller did not send
    [record] = tracker.records
    assert (record.llm_id, record.model) == (None, "gpt-4o")  # not booked on entry 7
    assert record.cost_source != "entry"  # gpt-4o is not priced at gpt-4o-mini's rates
