"""DynamicLLMClient against a loopback fake provider: retries, fallbacks, deadline, books."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from creative_services import (
    AllModelsFailedError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMEntry,
    LLMTier,
    LLMTimeoutError,
    MissingAPIKeyError,
    ModelNotFoundError,
    NoActiveEntryError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    UnknownModelError,
)
from creative_services.testing.fake_provider import FakeProvider
from creative_services.types import UsageRecord

KEY = "sk-" + "test-abcdefghijklmnopqrstuvwxyz"


def entry(fake: FakeProvider, name: str = "primary", **kw: Any) -> LLMEntry:
    fields: dict[str, Any] = {
        "name": name,
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "tier": "standard",
        "api_key": KEY,
        "api_endpoint": fake.base_url,
    }
    fields.update(kw)
    return LLMEntry(**fields)


def make_client(
    entries: list[LLMEntry], clock: Any, policy: RetryPolicy | None = None, **kw: Any
) -> DynamicLLMClient:
    return DynamicLLMClient(
        DictRegistry(entries),
        tracker=InMemoryUsageTracker(),
        retry_policy=policy or RetryPolicy(),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def records(client: DynamicLLMClient) -> list[UsageRecord]:
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    return list(tracker.records)


async def test_generate_returns_content_usage_cost_and_one_record(fake_provider, fake_clock):
    fake_provider.reply("Paris", prompt_tokens=12, completion_tokens=3, model="gpt-4o-mini-2024")
    client = make_client([entry(fake_provider)], fake_clock)

    response = await client.generate(prompt="Capital of France?", tier=LLMTier.STANDARD, user_id=7)

    assert response.content == "Paris"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 3)
    assert response.usage.total_tokens == 15
    assert response.model == "gpt-4o-mini-2024"
    assert response.entry.name == "primary"
    assert response.attempts == 1
    assert response.tried == ()
    # gpt-4o-mini in LiteLLM's bundled map: 0.15 $/M input, 0.60 $/M output
    assert response.cost == Decimal("12") * Decimal("1.5E-7") + Decimal("3") * Decimal("6E-7")
    assert response.cost_source == "litellm"
    [record] = records(client)
    assert record.outcome == "success"
    assert (record.user_id, record.prompt_tokens, record.completion_tokens) == (7, 12, 3)
    assert record.cost == response.cost
    assert record.request_id == response.request_id
    sent = fake_provider.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert sent.body["max_tokens"] == 4096
    assert sent.body["temperature"] == 0.7
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_call_arguments_override_entry_defaults_and_params_pass_through(
    fake_provider, fake_clock
):
    client = make_client([entry(fake_provider, max_tokens=100, temperature=0.2)], fake_clock)
    await client.generate(
        prompt="hi", system_prompt="be brief", max_tokens=50, temperature=0.0, seed=7
    )
    body = fake_provider.requests[0].body
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (50, 0.0, 7)


async def test_entry_price_wins_over_price_map(fake_provider, fake_clock):
    fake_provider.reply(prompt_tokens=1000, completion_tokens=2000)
    client = make_client(
        [entry(fake_provider, cost_per_1k_input="0.01", cost_per_1k_output="0.03")], fake_clock
    )
    response = await client.generate(prompt="hi")
    assert response.cost == Decimal("0.07")
    assert response.cost_source == "entry"


async def test_entry_with_only_one_price_is_priced_from_the_map(fake_provider, fake_clock):
    client = make_client([entry(fake_provider, cost_per_1k_input="0.01")], fake_clock)
    response = await client.generate(prompt="hi")
    assert response.cost_source == "litellm"
    assert response.cost == Decimal("10") * Decimal("1.5E-7") + Decimal("5") * Decimal("6E-7")


async def test_provider_reported_cost_wins(fake_provider, fake_clock):
    fake_provider.reply(usage_extra={"cost": 0.0123})
    client = make_client(
        [entry(fake_provider, provider="openrouter", model_name="openai/gpt-4.1-mini")],
        fake_clock,
    )
    response = await client.generate(prompt="hi")
    assert response.cost == Decimal("0.0123")
    assert response.cost_source == "provider"


async def test_local_tier_costs_zero(fake_provider, fake_clock):
    local = entry(fake_provider, provider="openai_compatible", tier="local", api_key="")
    client = make_client([local], fake_clock)
    response = await client.generate(prompt="hi", tier="local")
    assert response.cost == Decimal(0)
    assert response.cost_source == "local"


async def test_unknown_price_is_none_with_one_warning(fake_provider, fake_clock, caplog):
    gateway = entry(fake_provider, provider="openai_compatible", model_name="my-own-model-x1")
    client = make_client([gateway], fake_clock)
    with caplog.at_level(logging.WARNING, logger="creative_services"):
        first = await client.generate(prompt="hi")
        await client.generate(prompt="hi again")
    assert first.cost is None
    assert first.cost_source == "unknown"
    warnings = [r for r in caplog.records if "llm_price_unknown" in r.getMessage()]
    assert len(warnings) == 1
    assert "my-own-model-x1" in warnings[0].getMessage()
    assert all(r.cost is None for r in records(client))


async def test_missing_usage_is_estimated_and_flagged(fake_provider, fake_clock):
    fake_provider.reply("a fairly short answer", usage=False)
    client = make_client([entry(fake_provider)], fake_clock)
    response = await client.generate(prompt="Say something short please")
    assert response.usage.estimated
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens > 0
    assert records(client)[0].usage_estimated


# --- retries ----------------------------------------------------------------------------------


async def test_rate_limit_honours_retry_after(fake_provider, fake_clock):
    fake_provider.fail(429, headers={"retry-after": "3"})
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)

    response = await client.generate(prompt="hi")

    assert response.content == "ok"
    assert response.attempts == 2
    assert fake_clock.sleeps == [3.0]
    assert len(fake_provider.requests) == 2
    [record] = records(client)
    assert (record.outcome, record.attempts) == ("success", 2)


async def test_retry_after_ms_wins_over_retry_after(fake_provider, fake_clock):
    fake_provider.fail(429, headers={"retry-after-ms": "1500", "retry-after": "5"})
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)
    await client.generate(prompt="hi")
    assert fake_clock.sleeps == [1.5]


async def test_long_retry_after_falls_back_without_waiting(fake_provider, fake_clock):
    with FakeProvider() as second:
        fake_provider.fail(429, headers={"retry-after": "600"})
        second.reply("from backup")
        client = make_client(
            [
                entry(fake_provider),
                entry(second, name="backup", api_key="sk-" + "other-1234567890"),
            ],
            fake_clock,
        )
        response = await client.generate(prompt="hi")
    assert response.content == "from backup"
    assert response.entry.name == "backup"
    assert [t.name for t in response.tried] == ["primary"]
    assert fake_clock.sleeps == []
    assert response.attempts == 2


async def test_long_retry_after_on_last_entry_raises_with_retry_after(fake_provider, fake_clock):
    fake_provider.fail(429, headers={"retry-after": "600"})
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(RateLimitError) as info:
        await client.generate(prompt="hi")
    assert info.value.retry_after == 600
    assert info.value.status_code == 429
    assert info.value.attempts == 1
    assert fake_clock.sleeps == []


async def test_first_backoff_delay_is_sdk_like(fake_provider, fake_clock):
    fake_provider.fail(503)
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)
    await client.generate(prompt="hi")
    assert len(fake_clock.sleeps) == 1
    assert 0.375 <= fake_clock.sleeps[0] <= 0.5


async def test_transport_sees_exactly_one_plus_n_attempts(fake_provider, fake_clock):
    fake_provider.fail(500, times=10)
    client = make_client([entry(fake_provider)], fake_clock, RetryPolicy(max_retries=4))
    with pytest.raises(ServiceUnavailableError) as info:
        await client.generate(prompt="hi")
    assert len(fake_provider.requests) == 5
    assert info.value.attempts == 5
    assert info.value.status_code == 500
    assert info.value.__cause__ is not None  # chained to the last provider error
    [record] = records(client)
    assert (record.outcome, record.error_class, record.attempts) == (
        "error",
        "ServiceUnavailableError",
        5,
    )


async def test_x_should_retry_false_stops(fake_provider, fake_clock):
    fake_provider.fail(500, headers={"x-should-retry": "false"}, times=3)
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(ServiceUnavailableError):
        await client.generate(prompt="hi")
    assert len(fake_provider.requests) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, ModelNotFoundError),
    ],
)
async def test_client_errors_are_not_retried(fake_provider, fake_clock, status, error):
    fake_provider.fail(status, times=3)
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(error) as info:
        await client.generate(prompt="hi")
    assert info.value.status_code == status
    assert len(fake_provider.requests) == 1


async def test_insufficient_quota_is_not_retried(fake_provider, fake_clock):
    fake_provider.fail(429, "You exceeded your current quota", code="insufficient_quota", times=3)
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(QuotaExceededError):
        await client.generate(prompt="hi")
    assert len(fake_provider.requests) == 1


async def test_401_does_not_fall_back_to_entry_with_same_key(fake_provider, fake_clock):
    fake_provider.fail(401, "bad key", times=5)
    client = make_client([entry(fake_provider), entry(fake_provider, name="same-key")], fake_clock)
    with pytest.raises(AuthenticationError):
        await client.generate(prompt="hi")
    assert len(fake_provider.requests) == 1


async def test_401_falls_back_to_entry_with_other_key(fake_provider, fake_clock):
    fake_provider.fail(401, "bad key")
    client = make_client(
        [
            entry(fake_provider),
            entry(fake_provider, name="other", api_key="sk-" + "other-0987654321"),
        ],
        fake_clock,
    )
    response = await client.generate(prompt="hi")
    assert response.entry.name == "other"


async def test_whole_chain_failing_lists_each_entry_without_secrets(fake_provider, fake_clock):
    fake_provider.fail(500, f"upstream broke for key {KEY}", times=10)
    other_key = "sk-" + "second-key-9876543210abc"
    client = make_client(
        [entry(fake_provider), entry(fake_provider, name="backup", api_key=other_key)],
        fake_clock,
        RetryPolicy(max_retries=1),
    )
    with pytest.raises(AllModelsFailedError) as info:
        await client.generate(prompt="hi")
    err = info.value
    text = str(err) + repr(err) + repr(err.failures)
    assert "primary" in text
    assert "backup" in text
    assert "ServiceUnavailableError" in text
    assert KEY not in text
    assert other_key not in text
    assert err.attempts == 4
    assert [f.entry.name for f in err.failures if f.entry] == ["primary", "backup"]


async def test_deadline_covers_all_attempts(fake_provider, fake_clock):
    fake_provider.fail(503, headers={"retry-after": "0.8"}, times=5)
    client = make_client([entry(fake_provider)], fake_clock, RetryPolicy(timeout=1.0))
    with pytest.raises(ServiceUnavailableError):
        await client.generate(prompt="hi")
    # one wait of 0.8 s fits in 1 s; a second would not
    assert fake_clock.sleeps == [0.8]
    assert len(fake_provider.requests) == 2


async def test_timeout_uses_our_deadline_and_flags_possible_billing(fake_provider, fake_clock):
    fake_provider.reply("too late", delay=3.0)
    client = DynamicLLMClient(
        DictRegistry([entry(fake_provider)]),
        retry_policy=RetryPolicy(max_retries=0),
    )
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError) as info:
        await client.generate(prompt="hi", timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert "0.3s deadline" in str(info.value)
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    [record] = tracker.records
    assert record.may_have_been_billed
    assert record.error_class == "LLMTimeoutError"


async def test_connection_reset_is_retried(fake_provider, fake_clock):
    fake_provider.reset_connection()
    fake_provider.reply("after reset")
    client = make_client([entry(fake_provider)], fake_clock)
    response = await client.generate(prompt="hi")
    assert response.content == "after reset"
    assert response.attempts == 2


async def test_connection_refused_is_a_typed_connection_error(fake_clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = LLMEntry(
        name="closed",
        provider="openai",
        model_name="gpt-4o-mini",
        api_key=KEY,
        api_endpoint=f"http://127.0.0.1:{port}/v1",
    )
    client = make_client([closed], fake_clock)
    with pytest.raises(APIConnectionError) as info:
        await client.generate(prompt="hi")
    assert info.value.status_code is None
    assert info.value.attempts == 3


# --- configuration and input errors: before any HTTP call -------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prompt": ""},
        {"prompt": "   "},
        {"prompt": "nul\x00byte"},
        {"prompt": 42},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"messages": [{"role": "user", "content": ""}]},
        {"messages": [{"role": "user", "content": 3}]},
        {"messages": "hi"},
        {"system_prompt": "only a system prompt"},
        {"prompt": "hi", "max_tokens": -1},
        {"prompt": "hi", "max_tokens": 0},
        {"prompt": "hi", "max_tokens": 10**9},
        {"prompt": "hi", "max_tokens": 1.5},
        {"prompt": "hi", "temperature": float("nan")},
        {"prompt": "hi", "temperature": 3},
        {"prompt": "hi", "timeout": 0},
        {"prompt": "hi", "tier": "standard", "llm_name": "primary"},
        {"prompt": "hi", "model": "gpt-4o"},
    ],
)
async def test_bad_input_is_rejected_before_any_http_call(fake_provider, fake_clock, kwargs):
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(InvalidRequestError):
        await client.generate(**kwargs)
    assert fake_provider.requests == []


async def test_unknown_id_or_name_never_falls_back(fake_provider, fake_clock):
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(UnknownModelError, match="known ids: 1"):
        await client.generate(prompt="hi", llm_id=99)
    with pytest.raises(UnknownModelError, match="'primary'"):
        await client.generate(prompt="hi", llm_name="nope")
    assert fake_provider.requests == []


async def test_tier_without_entries_names_the_tier_and_the_fix(fake_provider, fake_clock):
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(NoActiveEntryError, match=r"'premium'.*is_active=True"):
        await client.generate(prompt="hi", tier="premium")


async def test_missing_key_names_the_env_variable(fake_provider, fake_clock):
    keyless = entry(fake_provider, api_key="", api_key_env="MY_LLM_KEY")
    client = make_client([keyless], fake_clock, environ={})
    with pytest.raises(MissingAPIKeyError, match="MY_LLM_KEY"):
        await client.generate(prompt="hi")
    client = make_client([entry(fake_provider, api_key="")], fake_clock, environ={})
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        await client.generate(prompt="hi")
    assert fake_provider.requests == []


async def test_key_is_read_from_env_at_call_time(fake_provider, fake_clock):
    env = {"MY_LLM_KEY": "sk-" + "from-env-1234567890"}
    client = make_client(
        [entry(fake_provider, api_key="", api_key_env="MY_LLM_KEY")], fake_clock, environ=env
    )
    await client.generate(prompt="hi")
    assert (
        fake_provider.requests[0].headers["authorization"]
        == "Bearer " + "sk-" + "from-env-1234567890"
    )


# --- books ------------------------------------------------------------------------------------


class BrokenTracker(InMemoryUsageTracker):
    def _store(self, record: UsageRecord) -> None:
        raise OSError("disk full")


async def test_failing_tracker_never_costs_the_answer(fake_provider, fake_clock, caplog):
    client = DynamicLLMClient(
        DictRegistry([entry(fake_provider)]), tracker=BrokenTracker(), clock=fake_clock
    )
    with caplog.at_level(logging.ERROR, logger="creative_services"):
        response = await client.generate(prompt="hi")
    assert response.content == "fake answer"
    assert len(client.failed_records) == 1
    assert client.failed_records[0].request_id == response.request_id
    assert any("usage_record_failed" in r.getMessage() for r in caplog.records)


async def test_cancelled_call_leaves_one_cancelled_record(fake_provider):
    fake_provider.reply("slow", delay=2.0)
    client = DynamicLLMClient(DictRegistry([entry(fake_provider)]))
    task = asyncio.create_task(client.generate(prompt="hi"))
    while not fake_provider.requests:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    for _ in range(200):  # the record is written on the library's loop as the call unwinds
        if tracker.records:
            break
        await asyncio.sleep(0.01)
    [record] = tracker.records
    assert record.outcome == "cancelled"
    assert record.may_have_been_billed


async def test_no_key_in_any_log_line(fake_provider, fake_clock, caplog):
    fake_provider.fail(401, f"Incorrect API key provided: {KEY}")
    client = make_client([entry(fake_provider)], fake_clock)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
        await client.generate(prompt="hi")
    assert KEY not in str(info.value)
    assert KEY not in caplog.text
    assert any("llm_call" in r.getMessage() for r in caplog.records)


async def test_prompts_are_logged_at_debug_level_only(fake_provider, fake_clock, caplog):
    client = make_client([entry(fake_provider)], fake_clock)
    with caplog.at_level(logging.DEBUG, logger="creative_services"):
        await client.generate(prompt="my secret plan")
    with_prompt = [r for r in caplog.records if "my secret plan" in r.getMessage()]
    assert [r.levelno for r in with_prompt] == [logging.DEBUG]
    [call_event] = [r for r in caplog.records if "llm_call" in r.getMessage()]
    assert call_event.levelno == logging.INFO
    for field in ("entry='primary'", "tier='standard'", "prompt_tokens=10", "attempts=1"):
        assert field in call_event.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="creative_services"):
        await client.generate(prompt="my secret plan")
    assert "my secret plan" not in caplog.text


def test_generate_sync_from_threads_and_inside_a_running_loop(fake_provider):
    client = DynamicLLMClient(DictRegistry([entry(fake_provider)]))
    results: list[str | None] = []

    def worker() -> None:
        results.append(client.generate_sync(prompt="hi").content)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == ["fake answer"] * 10

    async def inside_loop() -> str | None:
        return client.generate_sync(prompt="hi").content  # e.g. a Jupyter cell

    assert asyncio.run(inside_loop()) == "fake answer"
    names = [t.name for t in threading.enumerate()]
    assert names.count("creative-services-loop") == 1
