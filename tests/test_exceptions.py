"""The error tree: one root, picklable (Celery), no secrets."""

from __future__ import annotations

import pickle

import pytest

import creative_services.exceptions as exc_module
from creative_services import (
    AllModelsFailedError,
    ConfigurationError,
    CreativeServicesError,
    LLMError,
    LLMTier,
    NoActiveEntryError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from creative_services.exceptions import UsageTrackingError
from creative_services.types import EntryRef


def test_every_exported_error_descends_from_the_root():
    for name in exc_module.__all__:
        cls = getattr(exc_module, name)
        assert issubclass(cls, CreativeServicesError), name
        if cls is not CreativeServicesError:
            assert issubclass(cls, ConfigurationError | LLMError | UsageTrackingError), name


def test_quota_is_a_rate_limit_that_is_not_worth_waiting_for():
    assert issubclass(QuotaExceededError, RateLimitError)


def test_errors_pickle_with_their_fields():
    ref = EntryRef(id=1, name="a", provider="anthropic", model="claude", tier=LLMTier.PREMIUM)
    err = RateLimitError(
        "anthropic 429: slow down", model="claude", provider="anthropic", status_code=429,
        retry_after=7.0, entry=ref, attempts=3,
    )  # fmt: skip
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError
    assert (back.status_code, back.retry_after, back.attempts, back.entry) == (429, 7.0, 3, ref)
    assert str(back) == "anthropic 429: slow down"

    chain = AllModelsFailedError(
        [err, ServiceUnavailableError("mistral 500: down", status_code=500, entry=ref)], attempts=4
    )
    back_chain = pickle.loads(pickle.dumps(chain))
    assert [type(f) for f in back_chain.failures] == [RateLimitError, ServiceUnavailableError]
    assert "RateLimitError 429" in str(back_chain)
    assert back_chain.attempts == 4


@pytest.mark.parametrize("tier", ["economy", "premium"])
def test_no_active_entry_names_tier_and_fix(tier):
    err = NoActiveEntryError(tier)
    assert repr(tier) in str(err)
    assert "is_active=True" in str(err)
    assert pickle.loads(pickle.dumps(err)).tier == tier
