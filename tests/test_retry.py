"""Pure retry decisions, from tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from creative_services import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from creative_services.retry import Action, backoff_delay, decide, parse_retry_after

POLICY = RetryPolicy()


def d(error, retries_done=0, remaining=60.0, rand=0.0):
    return decide(error, retries_done=retries_done, policy=POLICY, remaining=remaining, rand=rand)


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("x", status_code=429),
        ServiceUnavailableError("x", status_code=500),
        ServiceUnavailableError("x", status_code=529),
        APIConnectionError("x"),
        LLMTimeoutError("x", status_code=408),
        LLMError("x", status_code=409),
    ],
)
def test_retryable_errors_retry_on_the_same_entry(error):
    assert d(error).action is Action.RETRY


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("x", status_code=400),
        AuthenticationError("x", status_code=401),
        PermissionDeniedError("x", status_code=403),
        ModelNotFoundError("x", status_code=404),
        ContextWindowExceededError("x", status_code=400),
        ContentPolicyError("x", status_code=400),
        QuotaExceededError("x", status_code=429, code="insufficient_quota"),
        LLMError("x", status_code=418),
    ],
)
def test_other_errors_move_to_the_next_entry(error):
    assert d(error).action is Action.FALLBACK


def test_x_should_retry_overrides_the_status():
    assert (
        d(ServiceUnavailableError("x", status_code=500, should_retry=False)).action
        is Action.FALLBACK
    )
    assert d(LLMError("x", status_code=400, should_retry=True)).action is Action.RETRY


def test_retries_are_bounded():
    err = ServiceUnavailableError("x", status_code=503)
    assert d(err, retries_done=1).action is Action.RETRY
    assert d(err, retries_done=2).action is Action.FALLBACK


def test_retry_after_is_the_delay_and_long_ones_fall_back():
    assert d(RateLimitError("x", retry_after=3.0)).delay == 3.0
    long = d(RateLimitError("x", retry_after=600.0))
    assert long.action is Action.FALLBACK
    assert "600" in long.reason


def test_a_wait_past_the_deadline_falls_back():
    assert d(RateLimitError("x", retry_after=5.0), remaining=4.0).action is Action.FALLBACK


@pytest.mark.parametrize(
    ("retries_done", "rand", "expected"),
    [(0, 0.0, 0.5), (0, 1.0, 0.375), (1, 0.0, 1.0), (2, 0.0, 2.0), (5, 0.0, 8.0), (9, 0.0, 8.0)],
)
def test_backoff_doubles_to_the_cap_with_jitter(retries_done, rand, expected):
    assert backoff_delay(retries_done, POLICY, rand) == pytest.approx(expected)


NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Wed, 25 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 25 Nov 2026 11:00:00 GMT"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-4"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers, NOW) == expected


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"timeout": 0}, {"timeout": float("inf")}, {"jitter": 2}]
)
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(InvalidRequestError):
        RetryPolicy(**kwargs)
