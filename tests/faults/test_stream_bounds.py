"""Item 4: a stream stays bounded after its first text. A provider that goes quiet between chunks
fails the stream after ``idle_timeout`` of silence (by default the call's ``timeout``); one that
keeps talking past ``total_timeout`` fails at that bound. Either way the error is a typed
``LLMTimeoutError``, the provider's HTTP response is closed (the server sees the hang-up), the
usage record holds what arrived with outcome ``error`` and the budget reservation is settled.

Timings are generous: two shared cores."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from creative_services import (
    BudgetLimit,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMStream,
    LLMTimeoutError,
    RetryPolicy,
    SyncLLMStream,
)
from creative_services.types import UsageRecord

from ._helpers import entry, records
from ._trickle import TrickleServer, trickle

WORDS = [f"w{i} " for i in range(5)]


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """The first stream of a process loads LiteLLM's provider code, and the first one cut short
    its tokenizer (seconds each). Do both up front so the timings below time only the bounds."""
    from creative_services import _litellm

    _litellm.estimate_tokens("gpt-4o-mini", text="warm up")
    with trickle(WORDS) as server:
        assert "".join(client_for(server).stream_sync(prompt="hi")) == "".join(WORDS)


def client_for(server: TrickleServer, **kw: Any) -> DynamicLLMClient:
    fake_entry = entry(
        server.base_url, cost_per_1k_input=Decimal("1"), cost_per_1k_output=Decimal("2")
    )
    kw.setdefault("retry_policy", RetryPolicy(max_retries=0))
    return DynamicLLMClient(DictRegistry([fake_entry]), tracker=InMemoryUsageTracker(), **kw)


class Reader:
    """Reads a stream to its end (or its error), keeping the texts and when the last came."""

    def __init__(self) -> None:
        self.got: list[str] = []
        self.last_text = time.monotonic()

    def _take(self, text: str) -> None:
        self.got.append(text)
        self.last_text = time.monotonic()

    async def aread(self, stream: LLMStream) -> None:
        async with stream:
            async for text in stream:
                self._take(text)

    def read(self, stream: SyncLLMStream) -> None:
        with stream:
            for text in stream:
                self._take(text)


def wait_for_records(client: DynamicLLMClient, count: int = 1) -> list[UsageRecord]:
    end = time.monotonic() + 10
    while len(records(client)) < count and time.monotonic() < end:
        time.sleep(0.01)
    return records(client)


def assert_hung_up(server: TrickleServer, error_at: float) -> None:
    """The server saw the client close the connection, soon after the error."""
    assert server.finished.wait(10)
    assert server.closed_at is not None, "the stream's HTTP response was left open"
    assert server.closed_at - error_at < 3.0


def assert_error_record(client: DynamicLLMClient, received: list[str]) -> UsageRecord:
    [record] = wait_for_records(client)
    assert (record.outcome, record.error_class) == ("error", "LLMTimeoutError")
    assert record.usage_estimated is True  # what arrived, counted locally
    assert record.completion_tokens >= len(received) > 0
    assert record.may_have_been_billed is True
    assert record.cost is not None
    assert record.cost > 0
    return record


async def test_a_quiet_stream_fails_after_idle_timeout_of_silence() -> None:
    budget = InMemoryBudget([BudgetLimit("global", "day", Decimal("100"))])
    with trickle(WORDS, gap=1.5) as server:
        client = client_for(server, budget=budget)
        reader = Reader()
        with pytest.raises(LLMTimeoutError) as info:
            await reader.aread(client.stream(prompt="hi", idle_timeout=1))
        error_at = time.monotonic()

        got = reader.got
        assert got == WORDS[:1]  # the second chunk would have come 1.5 s later
        assert 0.9 <= error_at - reader.last_text < 3
        assert info.value.code == "stream_idle_timeout"
        assert "idle_timeout" in str(info.value)
        assert info.value.entry is not None
        assert server.requests == 1  # no retry after text reached the caller
        assert_hung_up(server, error_at)
        record = assert_error_record(client, got)
        assert all(v == 0 for v in budget.reserved.values())  # settled, with what arrived
        assert list(budget.spent.values()) == [record.cost]


async def test_bytes_trickling_without_a_whole_chunk_still_count_as_silence() -> None:
    # The reported case: bytes keep coming (one every 50 ms), so no socket read ever times out,
    # but no whole chunk arrives within idle_timeout.
    with trickle(WORDS, byte_gap=0.05) as server:
        client = client_for(server)
        reader = Reader()
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError) as info:
            await reader.aread(client.stream(prompt="hi", idle_timeout=1))
        error_at = time.monotonic()
        got = reader.got

        assert info.value.code == "stream_idle_timeout"
        assert error_at - started < 8  # the whole stream would take ~40 s
        assert_hung_up(server, error_at)
        assert_error_record(client, got)


async def test_the_call_timeout_is_the_default_idle_timeout() -> None:
    # The reported case in small: timeout=1 bounded only the wait for the first text.
    with trickle(WORDS, gap=1.5) as server:
        client = client_for(server)
        reader = Reader()
        with pytest.raises(LLMTimeoutError) as info:
            await reader.aread(client.stream(prompt="hi", timeout=1))
        assert reader.got == WORDS[:1]
        assert info.value.code == "stream_idle_timeout"


async def test_a_chatty_stream_fails_at_its_total_timeout() -> None:
    words = [f"w{i} " for i in range(40)]
    with trickle(words, gap=0.2) as server:
        client = client_for(server)
        reader = Reader()
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError) as info:
            await reader.aread(client.stream(prompt="hi", idle_timeout=1, total_timeout=2))
        error_at = time.monotonic()
        got = reader.got

        assert info.value.code == "stream_total_timeout"
        assert "total_timeout" in str(info.value)
        assert 1.9 <= error_at - started < 3.5
        assert 3 <= len(got) < len(words)
        assert_hung_up(server, error_at)
        assert_error_record(client, got)


async def test_total_timeout_also_bounds_the_wait_for_the_first_text() -> None:
    with trickle(WORDS, head_delay=4) as server:
        client = client_for(server)
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError):
            await Reader().aread(client.stream(prompt="hi", total_timeout=1))
        assert time.monotonic() - started < 3
        [record] = wait_for_records(client)
        assert record.outcome == "error"


async def test_a_healthy_stream_is_unaffected() -> None:
    with trickle(WORDS, gap=0.2) as server:
        client = client_for(server)
        stream = client.stream(prompt="hi", idle_timeout=1, total_timeout=10)
        assert [text async for text in stream] == WORDS
        assert stream.response.usage.completion_tokens == len(WORDS)
        [record] = records(client)
        assert (record.outcome, record.usage_estimated) == ("success", False)


async def test_an_idle_timeout_longer_than_timeout_is_honoured() -> None:
    # timeout bounds only the wait for the first text; gaps of 1.5 s fit in idle_timeout=3.
    with trickle(WORDS[:3], gap=1.5) as server:
        client = client_for(server)
        stream = client.stream(prompt="hi", timeout=1, idle_timeout=3)
        assert [text async for text in stream] == WORDS[:3]
        assert records(client)[0].outcome == "success"


def test_the_sync_twin_is_bounded_the_same_way() -> None:
    with trickle(WORDS, gap=1.5) as server:
        client = client_for(server)
        reader = Reader()
        with pytest.raises(LLMTimeoutError) as info:
            reader.read(client.stream_sync(prompt="hi", idle_timeout=1))
        error_at = time.monotonic()

        got = reader.got
        assert info.value.code == "stream_idle_timeout"
        assert got == WORDS[:1]
        assert 0.9 <= error_at - reader.last_text < 3
        assert_hung_up(server, error_at)
        assert_error_record(client, got)


def test_the_sync_twin_fails_at_its_total_timeout() -> None:
    words = [f"w{i} " for i in range(40)]
    with trickle(words, gap=0.2) as server:
        client = client_for(server)
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError) as info:
            Reader().read(client.stream_sync(prompt="hi", total_timeout=1.5))
        assert info.value.code == "stream_total_timeout"
        assert time.monotonic() - started < 3.5
        assert_hung_up(server, time.monotonic())


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "5", True])
@pytest.mark.parametrize("name", ["idle_timeout", "total_timeout"])
async def test_bad_bounds_are_refused_before_any_request(name: str, value: Any) -> None:
    with trickle(WORDS) as server:
        client = client_for(server)
        with pytest.raises(InvalidRequestError, match=name) as info:
            client.stream_sync(prompt="hi", **{name: value})
        assert info.value.param == name
        stream = client.stream(prompt="hi", **{name: value})
        with pytest.raises(InvalidRequestError, match=name):
            await stream.__anext__()
        await asyncio.sleep(0.05)
        assert server.requests == 0
        assert records(client) == []


def test_many_quiet_streams_at_once_each_fail_on_time() -> None:
    # Bounds are per stream, on the one background loop: eight stalled streams in threads all
    # end after about one idle_timeout, not one after another.
    with trickle(WORDS, gap=1.5) as server:
        client = client_for(server)
        errors: list[BaseException] = []

        def read() -> None:
            try:
                Reader().read(client.stream_sync(prompt="hi", idle_timeout=1))
            except LLMTimeoutError as exc:
                errors.append(exc)

        started = time.monotonic()
        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert len(errors) == 8
        assert time.monotonic() - started < 5  # the first text at once, then 1 s of silence
        assert len(wait_for_records(client, 8)) == 8


def test_a_drop_in_stream_gets_the_sdk_timeout_as_its_idle_timeout() -> None:
    import openai

    from creative_services.openai_compat import OpenAI

    with trickle(WORDS, gap=1.5) as server:
        client = client_for(server)
        sdk = OpenAI(client=client, timeout=1.0, max_retries=0)
        chunks = sdk.chat.completions.create(
            model="standard", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        got: list[str] = []
        with pytest.raises(openai.APIError) as info:
            got.extend(c.choices[0].delta.content or "" for c in chunks if c.choices)
        error_at = time.monotonic()

        assert "".join(got) == WORDS[0]
        assert "idle_timeout" in str(info.value)
        assert info.value.code == "stream_idle_timeout"
        assert_hung_up(server, error_at)
        assert_error_record(client, [WORDS[0]])


async def test_an_async_drop_in_stream_gets_the_per_call_timeout_as_its_idle_timeout() -> None:
    import openai

    from creative_services.openai_compat import AsyncOpenAI

    with trickle(WORDS, gap=1.5) as server:
        client = client_for(server)
        sdk = AsyncOpenAI(client=client, max_retries=0)
        chunks = await sdk.chat.completions.create(
            model="standard",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            timeout=1.0,
        )
        got: list[str] = []

        async def read() -> None:
            async for chunk in chunks:
                if chunk.choices:
                    got.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError) as info:
            await read()
        error_at = time.monotonic()

        assert "".join(got) == WORDS[0]
        assert info.value.code == "stream_idle_timeout"
        assert_hung_up(server, error_at)
        assert_error_record(client, [WORDS[0]])


@pytest.mark.parametrize("name", ["idle_timeout", "total_timeout", "escalate", "llm_name"])
def test_a_request_body_cannot_set_the_clients_own_arguments(name: str) -> None:
    # The SDK sends extra_body's keys as body fields: they must not lift a stream's bounds (nor
    # escalate a gateway caller past its key's tiers).
    import openai

    from creative_services.openai_compat import OpenAI

    with trickle(WORDS) as server:
        client = client_for(server)
        sdk = OpenAI(client=client, max_retries=0)
        with pytest.raises(openai.BadRequestError, match=name) as info:
            sdk.chat.completions.create(
                model="standard",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_body={name: 1e9 if name.endswith("timeout") else "x"},
            )
        assert info.value.status_code == 400
        assert server.requests == 0
