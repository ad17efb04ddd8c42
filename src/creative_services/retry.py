"""Retry decisions (pure) and the small loop that applies them.

The only retry layer: LiteLLM's and the SDKs' own retries are switched off in ``_litellm.py``.
Defaults follow the official OpenAI/Anthropic SDKs: 2 retries, 0.5 s doubling to an 8 s cap with
up to 25 % jitter; ``retry-after-ms``, then ``retry-after`` (seconds or HTTP date), then
``x-should-retry`` decide before the status does.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from creative_services.exceptions import (
    APIConnectionError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
)

__all__ = [
    "Action",
    "Decision",
    "RetryPolicy",
    "backoff_delay",
    "decide",
    "parse_retry_after",
    "retry_call",
]

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429, 529}) | frozenset(range(500, 600))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``timeout`` is one deadline over every attempt and fallback."""

    max_retries: int = 2
    """Retries on the same entry after the first attempt (so 1 + max_retries attempts)."""
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    """Up to this fraction is taken off each backoff delay, at random."""
    max_retry_after: float = 20.0
    """A Retry-After longer than this moves on to the next entry instead of sleeping."""
    timeout: float = 60.0

    def __post_init__(self) -> None:
        checks = {
            "max_retries": self.max_retries >= 0,
            "base_delay": self.base_delay >= 0,
            "max_delay": self.max_delay >= 0,
            "jitter": 0 <= self.jitter <= 1,
            "max_retry_after": self.max_retry_after >= 0,
            "timeout": self.timeout > 0 and math.isfinite(self.timeout),
        }
        for name, ok in checks.items():
            if not ok:
                raise InvalidRequestError(
                    f"RetryPolicy.{name} is out of range: {getattr(self, name)!r}", param=name
                )


class Action(enum.Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"
    """Try the same entry again after ``delay``."""
    FALLBACK = "fallback"
    """Give up on this entry; the next candidate may still answer."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`decide`."""

    action: Action
    delay: float = 0.0
    reason: str = ""


def backoff_delay(retries_done: int, policy: RetryPolicy, rand: float) -> float:
    """Exponential backoff with jitter; ``rand`` in [0, 1) picks the jitter."""
    delay = min(policy.base_delay * 2.0**retries_done, policy.max_delay)
    return delay * (1.0 - policy.jitter * rand)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (wins) or ``retry-after`` (seconds or HTTP date).

    ``headers`` must have lower-case names. Returns None when absent or unparseable.
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # lazy: the email package costs ~10 ms

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


MALFORMED_RETRIES = 1
"""A malformed answer (a proxy's error page, a cut body) is retried once, then falls back."""


def _retryable(error: LLMError) -> bool:
    if isinstance(error, QuotaExceededError):
        return False
    if isinstance(error, MalformedResponseError):
        return True
    if isinstance(error, RateLimitError | ServiceUnavailableError | APIConnectionError):
        return True
    if isinstance(error, LLMTimeoutError):
        return True
    return error.status_code in RETRYABLE_STATUS and type(error) is LLMError


def decide(
    error: LLMError, *, retries_done: int, policy: RetryPolicy, remaining: float, rand: float
) -> Decision:
    """Retry this entry (after how long) or fall back to the next one. Pure.

    ``remaining`` is what is left of the deadline, in seconds.
    """
    if error.should_retry is False:
        return Decision(Action.FALLBACK, reason="provider said x-should-retry: false")
    if not (_retryable(error) or error.should_retry is True):
        return Decision(Action.FALLBACK, reason=f"{type(error).__name__} is not retryable")
    if retries_done >= policy.max_retries:
        return Decision(Action.FALLBACK, reason=f"{policy.max_retries} retries used")
    if isinstance(error, MalformedResponseError) and retries_done >= MALFORMED_RETRIES:
        return Decision(Action.FALLBACK, reason="a malformed answer is retried once")
    if error.retry_after is not None:
        if error.retry_after > policy.max_retry_after:
            return Decision(
                Action.FALLBACK,
                reason=f"retry-after {error.retry_after:g}s exceeds {policy.max_retry_after:g}s",
            )
        delay = error.retry_after
    else:
        delay = backoff_delay(retries_done, policy, rand)
    if delay >= remaining:
        return Decision(Action.FALLBACK, reason=f"waiting {delay:g}s would pass the deadline")
    return Decision(Action.RETRY, delay=delay, reason="retryable")


async def retry_call(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rand: Callable[[], float],
    on_retry: Callable[[LLMError, Decision], None] | None = None,
) -> T:
    """Call ``attempt`` until it succeeds or :func:`decide` says fall back; then re-raise.

    The raised :class:`LLMError` is the last one, with ``attempts`` set to the number of calls.
    A plain loop rather than tenacity: tenacity's per-attempt introspection cost about a third
    of this library's own per-call CPU (bench/RESULTS.md), and every decision is ours anyway.
    """
    retries = 0
    while True:
        try:
            return await attempt()
        except LLMError as error:
            error.attempts = retries + 1
            decision = decide(
                error,
                retries_done=retries,
                policy=policy,
                remaining=deadline - clock(),
                rand=rand(),
            )
            if decision.action is not Action.RETRY:
                raise
            if on_retry is not None:
                on_retry(error, decision)
            await sleep(decision.delay)
            retries += 1
