"""Items 1-6 of the fault suite: attempts, Retry-After, backoff, non-retryable errors, transport
failures, whole-chain failure. Behaviours already covered in tests/test_client.py are not
repeated here (docs/faults.rst links both)."""

from __future__ import annotations

import time

import pytest

from creative_services import (
    AllModelsFailedError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextWindowExceededError,
    DictRegistry,
    DynamicLLMClient,
    LLMTimeoutError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from creative_services.testing.fake_provider import FakeProvider

from ._helpers import KEY, OTHER_KEY, closed_port_url, entry, leaked, make_client, records

# --- 1. exactly 1 + N attempts ------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 3])
@pytest.mark.parametrize("fault", ["429", "503", "529", "reset"])
async def test_transport_sees_one_plus_n_attempts_per_entry(
    fake_provider, fake_clock, max_retries, fault
):
    attempts = 1 + max_retries
    if fault == "reset":
        fake_provider.reset_connection(times=attempts)
    else:
        fake_provider.fail(int(fault), times=attempts)
    fake_provider.fail(418, "must never be reached", times=5)
    client = make_client([entry(fake_provider)], fake_clock, RetryPolicy(max_retries=max_retries))

    with pytest.raises((RateLimitError, ServiceUnavailableError, APIConnectionError)) as info:
        await client.generate(prompt="hi")

    assert len(fake_provider.requests) == attempts
    assert info.value.attempts == attempts
    assert len(fake_clock.sleeps) == max_retries
    [record] = records(client)
    assert record.attempts == attempts


async def test_each_entry_of_a_chain_gets_one_plus_n_attempts(fake_provider, fake_clock):
    with FakeProvider() as second:
        fake_provider.fail(503, times=10)
        second.fail(503, times=10)
        client = make_client(
            [entry(fake_provider), entry(second, name="backup", api_key=OTHER_KEY)],
            fake_clock,
            RetryPolicy(max_retries=2),
        )
        with pytest.raises(AllModelsFailedError) as info:
            await client.generate(prompt="hi")
        assert (len(fake_provider.requests), len(second.requests)) == (3, 3)
    assert info.value.attempts == 6
    assert [f.attempts for f in info.value.failures] == [3, 3]


# --- 2. 429 and Retry-After -------------------------------------------------------------------


async def test_retry_after_ms_wins_even_over_a_long_retry_after(fake_provider, fake_clock):
    fake_provider.fail(429, headers={"retry-after-ms": "1500", "retry-after": "600"})
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)
    response = await client.generate(prompt="hi")
    assert response.content == "ok"
    assert fake_clock.sleeps == [1.5]
    [record] = records(client)
    assert (record.outcome, record.attempts) == ("success", 2)


async def test_retry_after_as_http_date_is_honoured(fake_provider, fake_clock):
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    fake_provider.fail(429, headers={"retry-after": when})
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)
    await client.generate(prompt="hi")
    [delay] = fake_clock.sleeps
    assert 3.0 <= delay <= 5.0


async def test_insufficient_quota_moves_to_the_next_entry_without_waiting(
    fake_provider, fake_clock
):
    with FakeProvider() as second:
        fake_provider.fail(429, "quota", code="insufficient_quota", times=3)
        second.reply("from backup")
        client = make_client(
            [entry(fake_provider), entry(second, name="backup", api_key=OTHER_KEY)], fake_clock
        )
        response = await client.generate(prompt="hi")
    assert response.content == "from backup"
    assert len(fake_provider.requests) == 1
    assert fake_clock.sleeps == []
    assert [t.name for t in response.tried] == ["primary"]


async def test_quota_error_is_a_rate_limit_error_that_is_not_retried(fake_provider, fake_clock):
    fake_provider.fail(429, "You exceeded your current quota", code="insufficient_quota")
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(QuotaExceededError) as info:
        await client.generate(prompt="hi")
    assert isinstance(info.value, RateLimitError)
    assert info.value.attempts == 1
    [record] = records(client)
    assert (record.outcome, record.error_class) == ("error", "QuotaExceededError")


# --- 3. 5xx: backoff, chaining, x-should-retry ------------------------------------------------


async def test_backoff_delays_follow_the_default_policy(fake_provider, fake_clock):
    fake_provider.fail(503, times=2)
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)
    await client.generate(prompt="hi")
    first, second = fake_clock.sleeps
    assert 0.375 <= first <= 0.5
    assert 0.75 <= second <= 1.0


async def test_error_is_chained_to_the_last_provider_error(fake_provider, fake_clock):
    for n in (1, 2, 3):
        fake_provider.fail(500, f"upstream broke, attempt {n}")
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(ServiceUnavailableError) as info:
        await client.generate(prompt="hi")
    err = info.value
    assert err.attempts == 3
    assert err.status_code == 500
    assert "attempt 3" in str(err)
    assert err.__cause__ is not None
    assert "attempt 3" in str(err.__cause__)
    assert not isinstance(err.__cause__, ServiceUnavailableError)  # the provider's own error


async def test_x_should_retry_true_retries_a_status_we_would_not(fake_provider, fake_clock):
    fake_provider.fail(400, headers={"x-should-retry": "true"})
    fake_provider.reply("ok")
    client = make_client([entry(fake_provider)], fake_clock)
    response = await client.generate(prompt="hi")
    assert response.attempts == 2
    assert len(fake_provider.requests) == 2


async def test_x_should_retry_false_stops_a_429(fake_provider, fake_clock):
    fake_provider.fail(429, headers={"x-should-retry": "false", "retry-after": "1"}, times=3)
    client = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(RateLimitError):
        await client.generate(prompt="hi")
    assert len(fake_provider.requests) == 1
    assert fake_clock.sleeps == []


# --- 4. errors not retried on the same entry --------------------------------------------------

CONTEXT = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted "
    "in 200000 tokens. Please reduce the length of the messages."
)
POLICY = "Invalid prompt: your prompt was flagged as potentially violating our usage policy."


@pytest.mark.parametrize(
    ("status", "message", "code", "error"),
    [
        (400, "bad request", None, BadRequestError),
        (404, "The model does not exist", "model_not_found", ModelNotFoundError),
        (400, CONTEXT, "context_length_exceeded", ContextWindowExceededError),
        (400, POLICY, "content_policy_violation", ContentPolicyError),
    ],
)
async def test_client_errors_are_not_retried_but_fall_back(
    fake_provider, fake_clock, status, message, code, error
):
    # OpenAI's real error shape: type invalid_request_error, with the code
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    with FakeProvider() as second:
        fake_provider.fail(status, body=body, times=3)
        second.reply("from backup")
        client = make_client(
            [entry(fake_provider), entry(second, name="backup", api_key=OTHER_KEY)], fake_clock
        )
        response = await client.generate(prompt="hi")
        assert response.content == "from backup"
    assert len(fake_provider.requests) == 1
    assert fake_clock.sleeps == []

    fake_provider.fail(status, body=body, times=3)
    alone = make_client([entry(fake_provider)], fake_clock)
    with pytest.raises(error) as info:
        await alone.generate(prompt="hi")
    assert info.value.status_code == status
    assert len(fake_provider.requests) == 2


async def test_401_never_falls_back_to_an_entry_reading_the_same_env_key(fake_provider, fake_clock):
    with FakeProvider() as second:
        fake_provider.fail(401, "Incorrect API key provided", times=3)
        env = {"SHARED_KEY": KEY}
        client = make_client(
            [
                entry(fake_provider, api_key="", api_key_env="SHARED_KEY"),
                entry(second, name="same-key", api_key="", api_key_env="SHARED_KEY"),
                entry(second, name="literal-same-key", api_key=KEY),
            ],
            fake_clock,
            environ=env,
        )
        with pytest.raises(AuthenticationError) as info:
            await client.generate(prompt="hi")
        assert second.requests == []
    assert len(fake_provider.requests) == 1
    assert info.value.attempts == 1


# --- 5. transport failures and our deadline ---------------------------------------------------


async def test_dns_failure_is_retried_as_a_connection_error(fake_clock):
    client = make_client([entry("http://nonexistent.invalid/v1")], fake_clock)
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as info:
        await client.generate(prompt="hi")
    assert time.monotonic() - started < 15  # offline: resolution fails at once, no real waits
    assert info.value.status_code is None
    assert info.value.attempts == 3
    assert len(fake_clock.sleeps) == 2
    [record] = records(client)
    assert (record.error_class, record.attempts) == ("APIConnectionError", 3)


async def test_connection_failure_falls_back_to_the_next_entry(fake_provider, fake_clock):
    fake_provider.reply("from backup")
    client = make_client(
        [entry(closed_port_url()), entry(fake_provider, name="backup", api_key=OTHER_KEY)],
        fake_clock,
        RetryPolicy(max_retries=1),
    )
    response = await client.generate(prompt="hi")
    assert response.content == "from backup"
    assert response.attempts == 3
    assert [t.name for t in response.tried] == ["primary"]


async def test_timeout_uses_our_deadline_over_retries_and_fallbacks(fake_provider):
    # A hanging provider: our deadline (0.4 s) bounds the whole call, retries and fallbacks
    # included; LiteLLM's 600 s default plays no part; the record says it may have been billed.
    fake_provider.reply("too late", delay=3.0, times=3)
    with FakeProvider() as second:
        client = DynamicLLMClient(
            DictRegistry([entry(fake_provider), entry(second, name="backup", api_key=OTHER_KEY)]),
            retry_policy=RetryPolicy(timeout=0.4),
        )
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError) as info:
            await client.generate(prompt="hi")
        elapsed = time.monotonic() - started
        assert second.requests == []  # the deadline was spent: no fallback past it
    assert elapsed < 2.5
    assert "0.4s deadline" in str(info.value)
    assert len(fake_provider.requests) == 1
    [record] = records(client)
    assert record.may_have_been_billed
    assert (record.outcome, record.error_class) == ("error", "LLMTimeoutError")


# --- 6. the whole chain fails -----------------------------------------------------------------


async def test_whole_chain_of_different_failures_lists_each_entry_and_class(
    fake_provider, fake_clock
):
    third_key = "sk-" + "fault-third-AsDfG1357HjKl2468"
    with FakeProvider() as second:
        fake_provider.fail(401, f"Incorrect API key provided: {KEY}")
        second.fail(429, f"slow down {OTHER_KEY}", headers={"retry-after": "600"})
        client = make_client(
            [
                entry(fake_provider),
                entry(second, name="backup", api_key=OTHER_KEY),
                entry(closed_port_url(), name="offline", api_key=third_key),
            ],
            fake_clock,
            RetryPolicy(max_retries=1),
        )
        with pytest.raises(AllModelsFailedError) as info:
            await client.generate(prompt="hi")
    err = info.value
    text = str(err)
    for name, cls in (
        ("primary", "AuthenticationError"),
        ("backup", "RateLimitError"),
        ("offline", "APIConnectionError"),
    ):
        assert any(name in line and cls in line for line in text.splitlines()), text
    assert [type(f).__name__ for f in err.failures] == [
        "AuthenticationError",
        "RateLimitError",
        "APIConnectionError",
    ]
    assert err.attempts == 1 + 1 + 2
    # Our own errors hold no key; the LiteLLM exceptions they chain to: see test_leaks.py.
    everything = text + repr(err) + "".join(repr(f) + str(f) for f in err.failures)
    for secret in (KEY, OTHER_KEY, third_key):
        assert leaked(secret, everything) == []
    [record] = records(client)
    assert (record.error_class, record.attempts) == ("AllModelsFailedError", 4)
