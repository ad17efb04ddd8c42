"""client.stream() / stream_sync(): recorded streams replay with exact text, usage and cost, and
every way a stream can end leaves exactly one usage record."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creative_services import (
    BudgetLimit,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMEntry,
    LLMError,
    RetryPolicy,
    StreamNotFinishedError,
    UsageRecord,
    _litellm,
)
from creative_services.testing.cassettes import use_cassette
from creative_services.testing.clock import FakeClock
from creative_services.testing.fake_provider import FakeProvider

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
INDEX: dict[str, dict[str, Any]] = json.loads((CASSETTES / "index.json").read_text("utf-8"))
STREAMED = sorted(name for name, item in INDEX.items() if item["streamed"])
KEY = "test-key"


def _recorded_entry(name: str) -> LLMEntry:
    item = INDEX[name]
    return LLMEntry(
        name=name,
        provider=item["provider"],
        model_name=item["model"],
        tier="standard",
        api_key=KEY,
    )


def _client(entry: LLMEntry, clock: FakeClock) -> DynamicLLMClient:
    return DynamicLLMClient(
        DictRegistry([entry]),
        tracker=InMemoryUsageTracker(),
        retry_policy=RetryPolicy(jitter=0.0),
        clock=clock,
        sleep=clock.sleep,
    )


def _tool_calls(calls: Any) -> list[tuple[str, Any]]:
    return [(call["name"], json.loads(call["arguments"])) for call in calls]


@pytest.mark.parametrize("name", STREAMED)
async def test_recorded_stream_gives_its_text_usage_and_one_record(
    name: str, fake_clock: FakeClock
) -> None:
    expect = INDEX[name]["expect"]
    entry = _recorded_entry(name)
    client = _client(entry, fake_clock)
    deltas: list[str] = []
    stream = client.stream(prompt="Answer the question.")

    async def read() -> None:
        async with stream:
            async for text in stream:
                deltas.append(text)

    with use_cassette(CASSETTES / INDEX[name]["cassette"]):
        await asyncio.wait_for(read(), 30)
    assert stream.closed

    response = stream.response
    assert "".join(deltas) == (expect["content"] or "")
    assert len(deltas) > 1 or not expect["content"]
    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert record.outcome == "success"
    assert record.attempts == 1
    if expect["prompt_tokens"] is None:  # the provider sent no usage: counted here, and flagged
        assert record.usage_estimated is True
        assert record.prompt_tokens > 0
        assert record.completion_tokens > 0
    else:
        assert record.usage_estimated is False
        assert (record.prompt_tokens, record.completion_tokens) == (
            expect["prompt_tokens"],
            expect["completion_tokens"],
        )
    assert response.content == (expect["content"] or None)
    assert response.usage.prompt_tokens == record.prompt_tokens
    assert response.entry.name == name
    assert response.attempts == 1
    if "tool_calls" in expect:
        assert _tool_calls(response.tool_calls) == _tool_calls(expect["tool_calls"])
        assert all(call["id"] for call in response.tool_calls)
    assert response.finish_reason in {"stop", "tool_calls"}
    # Priced like a non-streamed answer: the same tokens at LiteLLM's bundled prices.
    prices = _litellm.map_prices(entry.provider, entry.model_name)
    if prices is None:
        assert (record.cost, record.cost_source) == (None, "unknown")
    else:
        expected = prices.input * record.prompt_tokens + prices.output * record.completion_tokens
        assert record.cost == response.cost == expected
        assert record.cost_source == "litellm"


def test_stream_sync_iterates_a_recorded_stream(fake_clock: FakeClock) -> None:
    name = "openai-stream-include-usage"
    client = _client(_recorded_entry(name), fake_clock)
    with (
        use_cassette(CASSETTES / INDEX[name]["cassette"]),
        client.stream_sync(prompt="Say this is a test") as stream,
    ):
        text = "".join(stream)
    assert text == INDEX[name]["expect"]["content"]
    assert stream.response.content == text
    assert stream.response.usage.completion_tokens == 5
    assert len(client.tracker.records) == 1  # type: ignore[attr-defined]


async def test_bad_arguments_fail_before_any_request(fake_provider: FakeProvider) -> None:
    entry = LLMEntry(
        name="fake",
        provider="openai",
        model_name="gpt-4o-mini",
        tier="standard",
        api_key=KEY,
        api_endpoint=fake_provider.base_url,
    )
    client = DynamicLLMClient(DictRegistry([entry]))
    with pytest.raises(InvalidRequestError, match="role"):
        async for _ in client.stream(messages=[{"role": "robot", "content": "hi"}]):
            pass
    with pytest.raises(InvalidRequestError, match="stream"):
        client.stream_sync(prompt="hi", stream=False)
    assert fake_provider.requests == []
    assert list(client.tracker.records) == []  # type: ignore[attr-defined]


async def test_response_before_the_end_names_the_fix(fake_clock: FakeClock) -> None:
    client = _client(_recorded_entry("openai-stream-include-usage"), fake_clock)
    stream = client.stream(prompt="hi")
    with pytest.raises(StreamNotFinishedError, match="iterate it fully"):
        _ = stream.response
    await stream.aclose()  # never started: nothing to stop, nothing recorded
    assert list(client.tracker.records) == []  # type: ignore[attr-defined]


# --- how a stream ends: exactly one usage record each time (loopback fake provider) ---------

WORDS = [f"w{i} " for i in range(40)]


def _fake_entry(fake: FakeProvider, name: str = "fake", **overrides: Any) -> LLMEntry:
    fields: dict[str, Any] = {
        "name": name,
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "tier": "standard",
        "api_key": KEY,
        "api_endpoint": fake.base_url,
        "cost_per_1k_input": "1",
        "cost_per_1k_output": "2",
    }
    fields.update(overrides)
    return LLMEntry(**fields)


def _fake_client(*entries: LLMEntry, **kwargs: Any) -> DynamicLLMClient:
    kwargs.setdefault("retry_policy", RetryPolicy(jitter=0.0, base_delay=0.01))
    return DynamicLLMClient(DictRegistry(list(entries)), tracker=InMemoryUsageTracker(), **kwargs)


async def _wait_for_records(client: DynamicLLMClient, count: int) -> list[UsageRecord]:
    """Records written by the background loop after the caller moved on (bounded wait)."""
    for _ in range(500):
        records = list(client.tracker.records)  # type: ignore[attr-defined]
        if len(records) >= count:
            return records
        await asyncio.sleep(0.01)
    return list(client.tracker.records)  # type: ignore[attr-defined]


async def test_complete_stream_records_provider_usage(fake_provider: FakeProvider) -> None:
    fake_provider.stream(["Hel", "lo", "!"], prompt_tokens=7, completion_tokens=3)
    client = _fake_client(_fake_entry(fake_provider))
    stream = client.stream(prompt="hi", user_id=5)
    assert [text async for text in stream] == ["Hel", "lo", "!"]

    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert (record.prompt_tokens, record.completion_tokens) == (7, 3)
    assert (record.outcome, record.usage_estimated, record.user_id) == ("success", False, 5)
    assert record.cost == stream.response.cost == Decimal("0.013")  # 7 x 1/1k + 3 x 2/1k
    body = fake_provider.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_break_inside_async_with_stops_the_call_and_records_once(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.02)
    client = _fake_client(_fake_entry(fake_provider))
    got: list[str] = []
    async with client.stream(prompt="hi") as stream:
        async for text in stream:
            got.append(text)
            if len(got) == 3:
                break

    [record] = client.tracker.records  # type: ignore[attr-defined]  # written before aexit ends
    assert record.outcome == "cancelled"
    assert record.usage_estimated is True  # what arrived is counted locally
    assert 3 <= record.completion_tokens < 40
    assert record.prompt_tokens > 0
    assert record.may_have_been_billed is True
    assert record.cost is not None
    assert record.cost > 0
    assert stream.closed
    with pytest.raises(StreamNotFinishedError, match="did not finish"):
        _ = stream.response


async def test_break_without_async_with_still_records_once(fake_provider: FakeProvider) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.02)
    client = _fake_client(_fake_entry(fake_provider))
    async for text in client.stream(prompt="hi"):
        assert text == "w0 "
        break  # the stream object is dropped here: the call is stopped in the background

    [record] = await _wait_for_records(client, 1)
    assert record.outcome == "cancelled"
    assert record.completion_tokens < 40
    await asyncio.sleep(0.1)
    assert len(client.tracker.records) == 1  # type: ignore[attr-defined]


async def test_cancelled_consumer_records_once(fake_provider: FakeProvider) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.05)
    client = _fake_client(_fake_entry(fake_provider))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.stream(prompt="hi"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [record] = await _wait_for_records(client, 1)
    assert record.outcome == "cancelled"
    assert record.error_class == "CancelledError"
    assert record.completion_tokens < 40


async def test_stream_failing_midway_raises_and_records_once_without_retry(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.stream(WORDS, fail_after=3)
    second = _fake_entry(fake_provider, name="second", priority=2)
    client = _fake_client(_fake_entry(fake_provider, priority=1), second)
    got: list[str] = []

    async def read() -> None:
        async for text in client.stream(prompt="hi", tier="standard"):
            got.append(text)

    with pytest.raises(LLMError) as info:
        await read()

    assert got == WORDS[:3]  # no retry, no fallback after the first chunk: no repeated text
    assert len(fake_provider.requests) == 1
    assert info.value.entry is not None
    assert info.value.entry.name == "fake"
    [record] = await _wait_for_records(client, 1)
    assert (record.outcome, record.entry_name) == ("error", "fake")
    assert record.error_class == type(info.value).__name__
    assert record.usage_estimated is True
    assert record.completion_tokens >= 3


async def test_failure_before_the_first_chunk_is_retried_then_falls_back(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.fail(503)
    fake_provider.fail(401)
    fake_provider.stream(["from ", "second"])
    first = _fake_entry(fake_provider, priority=1)
    second = _fake_entry(fake_provider, name="second", priority=2, api_key="other-key")
    client = _fake_client(first, second)

    stream = client.stream(prompt="hi")
    assert "".join([text async for text in stream]) == "from second"

    assert stream.response.entry.name == "second"
    assert stream.response.attempts == 3  # 503, retried: 401, fallback: streamed
    assert [e.name for e in stream.response.tried] == ["fake"]
    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert (record.entry_name, record.attempts, record.outcome) == ("second", 3, "success")


def test_sync_stream_closed_early_records_once(fake_provider: FakeProvider) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.02)
    client = _fake_client(_fake_entry(fake_provider))
    with client.stream_sync(prompt="hi") as stream:
        assert next(stream) == "w0 "

    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert record.outcome == "cancelled"
    assert stream.closed


async def test_stream_cut_short_settles_its_budget_with_the_partial_cost(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.02)
    budget = InMemoryBudget([BudgetLimit("global", "day", Decimal("100"))])
    client = _fake_client(_fake_entry(fake_provider), budget=budget)
    async with client.stream(prompt="hi", max_tokens=50) as stream:
        async for _ in stream:
            break

    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert all(v == 0 for v in budget.reserved.values())
    assert list(budget.spent.values()) == [record.cost]
    assert record.cost is not None
    assert record.cost > 0


async def test_a_stream_dropped_before_any_text_still_falls_back(
    fake_provider: FakeProvider,
) -> None:
    # OpenAI-style streams open with a role-only chunk: a drop right after it lost no text.
    fake_provider.stream(["never"], fail_after=0)
    fake_provider.stream(["from ", "backup"])
    first = _fake_entry(fake_provider, priority=1)
    second = _fake_entry(fake_provider, name="second", priority=2, api_key="other-key")
    client = _fake_client(first, second, retry_policy=RetryPolicy(max_retries=0))

    stream = client.stream(prompt="hi")
    assert [text async for text in stream] == ["from ", "backup"]
    assert stream.response.entry.name == "second"
    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert (record.entry_name, record.outcome, record.attempts) == ("second", "success", 2)


def test_close_from_another_thread_ends_the_reading_thread(fake_provider: FakeProvider) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.05)
    client = _fake_client(_fake_entry(fake_provider))
    stream = client.stream_sync(prompt="hi")
    got: list[str] = []
    first = threading.Event()

    def read() -> None:
        for text in stream:
            got.append(text)
            first.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert first.wait(10)
    stream.close()  # a "stop" button, on another thread than the one iterating
    reader.join(10)
    assert not reader.is_alive()
    assert 1 <= len(got) < len(WORDS)
    [record] = client.tracker.records  # type: ignore[attr-defined]
    assert record.outcome == "cancelled"


async def test_aclose_from_another_task_ends_the_reading_task(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.05)
    client = _fake_client(_fake_entry(fake_provider))
    stream = client.stream(prompt="hi")
    first = asyncio.Event()

    async def read() -> int:
        count = 0
        async for _ in stream:
            count += 1
            first.set()
        return count

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 10)
    await stream.aclose()
    assert 1 <= await asyncio.wait_for(reader, 10) < len(WORDS)
    assert len(client.tracker.records) == 1  # type: ignore[attr-defined]


async def test_a_stream_that_failed_to_start_stays_failed(fake_provider: FakeProvider) -> None:
    client = _fake_client(_fake_entry(fake_provider))
    stream = client.stream(prompt="hi", temperature=-5)
    with pytest.raises(InvalidRequestError, match="temperature"):
        await stream.__anext__()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    assert fake_provider.requests == []


async def test_a_cancelled_read_does_not_pass_for_the_end_of_the_text(
    fake_provider: FakeProvider,
) -> None:
    fake_provider.stream(WORDS, chunk_delay=0.5)
    client = _fake_client(_fake_entry(fake_provider))
    stream = client.stream(prompt="hi")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stream.__anext__(), 0.2)  # a per-chunk idle timeout
    with pytest.raises(StreamNotFinishedError, match="incomplete"):
        async for _ in stream:
            pass
    [record] = await _wait_for_records(client, 1)
    assert record.outcome == "cancelled"


def test_read_limit_takes_the_nearer_of_the_idle_and_total_bounds() -> None:
    from creative_services.streaming import StreamBounds, read_limit

    idle_only = StreamBounds(first_output=10, idle=2, total=None)
    assert read_limit(idle_only, now=105.0, started=0.0, last_chunk=104.5) == (1.5, "idle")
    both = StreamBounds(first_output=10, idle=2, total=10)
    assert read_limit(both, now=5.0, started=0.0, last_chunk=5.0) == (2.0, "idle")
    assert read_limit(both, now=9.0, started=0.0, last_chunk=9.0) == (1.0, "total")
    limit, bound = read_limit(both, now=11.0, started=0.0, last_chunk=10.5)
    assert (limit <= 0, bound) == (True, "total")  # already past: fail without reading


def test_stream_bounds_default_idle_to_the_call_timeout_and_cap_the_first_wait() -> None:
    from creative_services.streaming import StreamBounds, stream_bounds

    assert stream_bounds(None, None, None, default_timeout=60) == StreamBounds(60, 60, None)
    assert stream_bounds(10, None, None, default_timeout=60) == StreamBounds(10, 10, None)
    assert stream_bounds(10, 3, 5, default_timeout=60) == StreamBounds(5, 3, 5)
    assert stream_bounds(None, None, 300, default_timeout=60) == StreamBounds(60, 60, 300)
    with pytest.raises(InvalidRequestError, match="idle_timeout must be seconds > 0"):
        stream_bounds(None, -1, None, default_timeout=60)
