"""Every error the library raises, under one root.

::

    CreativeServicesError
    ├── ConfigurationError            a developer mistake: fix code or configuration
    │   ├── InvalidTierError          (also ValueError) a tier name that does not exist
    │   ├── InvalidEntryError         (also ValueError) a registry entry with a bad field
    │   ├── InvalidRequestError       (also ValueError) bad prompt/messages/parameters
    │   ├── UnknownModelError         (also LookupError) no entry with that id or name
    │   ├── NoActiveEntryError        (also LookupError) a tier with no active entry
    │   ├── MissingAPIKeyError        an entry whose key (or its env variable) is not set
    │   ├── MissingDependencyError    an optional extra is not installed
    │   └── StreamNotFinishedError    ``stream.response`` read before the stream's end
    ├── LLMError                      the provider call failed (model, provider, status_code)
    │   ├── RateLimitError            429; ``retry_after`` as the provider announced it
    │   │   └── QuotaExceededError    429 insufficient_quota / billing: waiting will not help
    │   ├── LLMTimeoutError           our deadline or the provider's timeout
    │   ├── APIConnectionError        no HTTP answer: refused, reset, DNS
    │   ├── ServiceUnavailableError   5xx, 529 overloaded
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── ModelNotFoundError        404
    │   ├── BadRequestError           400/422
    │   │   ├── ContextWindowExceededError
    │   │   └── ContentPolicyError
    │   ├── BudgetExceededError       a spending limit would be passed; raised before any call
    │   ├── BudgetUnavailableError    the budget's storage did not answer in time (fail closed)
    │   ├── MalformedResponseError    a 2xx answer that is not a completion (HTML, {}, no choices)
    │   ├── StructuredOutputError     the answer is not valid JSON or does not fit the schema
    │   └── AllModelsFailedError      every candidate failed; ``failures`` lists each one
    └── UsageTrackingError            a usage record could not be accepted
        └── UsageSpoolFullError       the batched tracker's local spool is full (the usage
                                      database has been unreachable for long)

LiteLLM and SDK exceptions never escape: ``_litellm.py`` translates them once, with
``raise ... from exc``. Every error pickles (Celery) and never contains an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from creative_services._secrets import mask

if TYPE_CHECKING:
    from decimal import Decimal

    from creative_services.types import EntryRef

__all__ = [
    "APIConnectionError",
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "BudgetUnavailableError",
    "ConfigurationError",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "CreativeServicesError",
    "InvalidEntryError",
    "InvalidRequestError",
    "InvalidTierError",
    "LLMError",
    "LLMTimeoutError",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NoActiveEntryError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ServiceUnavailableError",
    "StreamNotFinishedError",
    "StructuredOutputError",
    "UnknownModelError",
    "UsageSpoolFullError",
    "UsageTrackingError",
]


def _rebuild(cls: type[CreativeServicesError], state: dict[str, Any]) -> CreativeServicesError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class CreativeServicesError(Exception):
    """Root of every error this library raises."""

    message: str

    def __init__(self, message: str) -> None:
        message = mask(str(message))  # no message of ours shows a known key (_secrets.py)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


class ConfigurationError(CreativeServicesError):
    """A developer mistake: unknown model or tier, missing key or dependency, bad input."""


class InvalidTierError(ConfigurationError, ValueError):
    """A tier name that is not one of the valid tiers."""

    def __init__(self, value: object, valid: Sequence[str]) -> None:
        super().__init__(f"invalid tier {value!r}: valid tiers are {', '.join(valid)}")
        self.value = value
        self.valid = tuple(valid)


class InvalidEntryError(ConfigurationError, ValueError):
    """A registry entry with a missing or malformed field."""

    def __init__(self, field: str, problem: str, *, entry: str | None = None) -> None:
        where = f" of entry {entry!r}" if entry else ""
        super().__init__(f"field {field!r}{where} {problem}")
        self.field = field
        self.entry = entry


class InvalidRequestError(ConfigurationError, ValueError):
    """Bad call arguments (prompt, messages, max_tokens, ...), rejected before any network call."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownModelError(ConfigurationError, LookupError):
    """No registry entry has the requested id or name; there is no silent fallback."""

    def __init__(self, message: str, *, key: object = None) -> None:
        super().__init__(message)
        self.key = key


class NoActiveEntryError(ConfigurationError, LookupError):
    """A tier has no active registry entry."""

    def __init__(self, tier: str) -> None:
        super().__init__(
            f"no active LLM entry for tier {tier!r}: add one with tier={tier!r} and "
            f"is_active=True to the registry (DictRegistry entries, CREATIVE_SERVICES_MODELS, "
            f"or the Llms table), or set a provider key such as OPENAI_API_KEY for zero-config"
        )
        self.tier = tier


class MissingAPIKeyError(ConfigurationError):
    """An entry needs an API key and neither the entry nor its environment variable holds one."""

    def __init__(self, entry: str, env_var: str | None) -> None:
        how = f"set the environment variable {env_var}" if env_var else "set api_key"
        super().__init__(f"no API key for entry {entry!r}: {how} or give the entry an api_key")
        self.entry = entry
        self.env_var = env_var


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class StreamNotFinishedError(ConfigurationError):
    """``stream.response`` was read before the stream was read to its end (or it stopped early)."""


class UsageTrackingError(CreativeServicesError):
    """A tracker refused a usage record (the client keeps it in ``failed_records``)."""


class UsageSpoolFullError(UsageTrackingError):
    """The batched tracker's spool has no room for another record (``max_bytes`` are taken by
    ``records`` unwritten ones): nothing more is accepted until the writer catches up."""

    path: str
    max_bytes: int
    records: int

    def __init__(self, path: str, max_bytes: int, records: int) -> None:
        super().__init__(
            f"the usage spool {path} is full ({records} unwritten records in {max_bytes} "
            "bytes): is the usage database down? (CREATIVE_SERVICES_USAGE_SPOOL_MAX_BYTES)"
        )
        self.path = path
        self.max_bytes = max_bytes
        self.records = records


class LLMError(CreativeServicesError):
    """A provider call failed. ``status_code`` is the provider's real HTTP status, or None."""

    model: str | None
    provider: str | None
    status_code: int | None
    retry_after: float | None
    should_retry: bool | None
    code: str | None
    entry: EntryRef | None
    attempts: int
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        code: str | None = None,
        entry: EntryRef | None = None,
        attempts: int = 1,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        self.should_retry = should_retry
        self.code = code
        self.entry = entry
        self.attempts = attempts
        self.request_id = request_id


class RateLimitError(LLMError):
    """429: too many requests. ``retry_after`` (seconds) is what the provider announced."""


class QuotaExceededError(RateLimitError):
    """429 that waiting will not cure: quota or billing exhausted, or a request over the limit."""


class LLMTimeoutError(LLMError):
    """The call ran out of time (our deadline or the provider's); it may still have been billed."""


class APIConnectionError(LLMError):
    """No HTTP answer: connection refused or reset, DNS failure."""


class ServiceUnavailableError(LLMError):
    """The provider failed (5xx) or is overloaded (529)."""


class AuthenticationError(LLMError):
    """401: the key was refused."""


class PermissionDeniedError(LLMError):
    """403: the key may not use this model or endpoint."""


class ModelNotFoundError(LLMError):
    """404: the provider does not know the model (or the endpoint URL is wrong)."""


class BadRequestError(LLMError):
    """400/422: the provider refused the request as malformed."""


class ContextWindowExceededError(BadRequestError):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""


class ContentPolicyError(BadRequestError):
    """The provider refused the content under its usage policy."""


class BudgetExceededError(LLMError):
    """A spending limit would be passed: raised before any HTTP call, nothing was spent."""

    def __init__(
        self,
        scope: str,
        scope_id: str,
        period: str,
        limit: Decimal,
        used: Decimal,
        requested: Decimal,
    ) -> None:
        who = "global" if scope == "global" else f"{scope} {scope_id}"
        super().__init__(
            f"budget exceeded for {who}: {period} limit ${limit}, already spent or reserved "
            f"${used}, this call may cost up to ${requested}"
        )
        self.scope = scope
        self.scope_id = scope_id
        self.period = period
        self.limit = limit
        self.used = used
        self.requested = requested


class BudgetUnavailableError(LLMError):
    """The budget's storage (e.g. the database) did not answer in time or failed.

    Raised by a reservation before any HTTP call when the budget fails closed (the default); by a
    settle whose write is then retried in the background (``pending`` is True).
    """

    def __init__(self, message: str, *, pending: bool = False) -> None:
        super().__init__(message, should_retry=True)
        self.pending = pending


class MalformedResponseError(LLMError):
    """The provider answered with a success status, but not with a completion: invalid JSON,
    an HTML page, ``{}``, ``null``, no ``choices`` or no message. ``status_code`` is the status
    the answer came with (LiteLLM reports these as 500). Retried at most once on the same entry
    (a proxy's hiccup), then the next entry."""


class StructuredOutputError(LLMError):
    """The answer to a ``response_format`` call is not valid JSON or does not fit the schema.

    ``raw`` is the text the model returned (kept out of the message, which names only where and
    why validation failed); ``errors`` lists each problem found.
    """

    raw: str
    errors: tuple[str, ...]

    def __init__(
        self,
        message: str,
        *,
        raw: str,
        errors: Sequence[str] = (),
        model: str | None = None,
        provider: str | None = None,
        entry: EntryRef | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, model=model, provider=provider, entry=entry, request_id=request_id
        )
        self.raw = raw
        self.errors = tuple(errors)


class AllModelsFailedError(LLMError):
    """Every candidate entry failed. ``failures`` holds one error per entry, in order tried."""

    failures: tuple[LLMError, ...]

    def __init__(self, failures: Sequence[LLMError], *, attempts: int) -> None:
        lines = [
            f"  - {f.entry.name if f.entry else f.model} ({f.provider}/{f.model}): "
            f"{type(f).__name__}"
            + (f" {f.status_code}" if f.status_code is not None else "")
            + f": {f.message}"
            for f in failures
        ]
        last = failures[-1] if failures else None
        super().__init__(
            f"all {len(failures)} candidate model(s) failed after {attempts} attempt(s):\n"
            + "\n".join(lines),
            model=last.model if last else None,
            provider=last.provider if last else None,
            status_code=last.status_code if last else None,
            retry_after=last.retry_after if last else None,
            entry=last.entry if last else None,
            attempts=attempts,
        )
        self.failures = tuple(failures)
