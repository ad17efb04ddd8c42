"""creative-services: call any LLM by tier, with retries, fallbacks, cost and usage records.

Importing this package loads neither LiteLLM nor Django; LiteLLM is imported on the first call.
"""

from typing import Any

from creative_services.budgets import BudgetBackend, BudgetLimit, InMemoryBudget
from creative_services.cache import CachedAnswer, InMemoryResponseCache, ResponseCache
from creative_services.client import DynamicLLMClient, Escalate
from creative_services.exceptions import (
    AllModelsFailedError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    BudgetUnavailableError,
    ConfigurationError,
    ContentPolicyError,
    ContextWindowExceededError,
    CreativeServicesError,
    InvalidEntryError,
    InvalidRequestError,
    InvalidTierError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    MissingAPIKeyError,
    MissingDependencyError,
    ModelNotFoundError,
    NoActiveEntryError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
    StreamNotFinishedError,
    StructuredOutputError,
    UnknownModelError,
    UsageSpoolFullError,
    UsageTrackingError,
)
from creative_services.registry import BaseRegistry, DictRegistry, LLMRegistry
from creative_services.retry import RetryPolicy
from creative_services.streaming import LLMStream, SyncLLMStream
from creative_services.structured import OutputSpec
from creative_services.tracking import (
    InMemoryUsageTracker,
    SQLiteUsageTracker,
    UsageTracker,
)
from creative_services.types import (
    EntryRef,
    LLMEntry,
    LLMResponse,
    LLMTier,
    Secret,
    ToolCall,
    Usage,
    UsageRecord,
)
from creative_services.warmup import warmup

_ORIGINAL_NAMES = frozenset({"InMemoryTracker", "LLMClient", "LLMConfig", "LLMProvider"})
"""Loaded (with a DeprecationWarning) from creative_services._compat on first use."""


def __getattr__(name: str) -> Any:
    # importlib.metadata costs ~30 ms: read the version only when someone asks for it.
    if name == "__version__":
        from importlib.metadata import version

        return version("creative-services")
    if name in _ORIGINAL_NAMES:  # the original package's top-level names: deprecated
        import importlib

        from creative_services._compat import deprecated
        from creative_services.core._names import TOP_LEVEL

        where, new = TOP_LEVEL[name]
        deprecated(f"creative_services.{name}", new)
        return getattr(importlib.import_module(where), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APIConnectionError",
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "BaseRegistry",
    "BudgetBackend",
    "BudgetExceededError",
    "BudgetLimit",
    "BudgetUnavailableError",
    "CachedAnswer",
    "ConfigurationError",
    "ContentPolicyError",
    "ContextWindowExceededError",
    "CreativeServicesError",
    "DictRegistry",
    "DynamicLLMClient",
    "EntryRef",
    "Escalate",
    "InMemoryBudget",
    "InMemoryResponseCache",
    "InMemoryUsageTracker",
    "InvalidEntryError",
    "InvalidRequestError",
    "InvalidTierError",
    "LLMEntry",
    "LLMError",
    "LLMRegistry",
    "LLMResponse",
    "LLMStream",
    "LLMTier",
    "LLMTimeoutError",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NoActiveEntryError",
    "OutputSpec",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseCache",
    "RetryPolicy",
    "SQLiteUsageTracker",
    "Secret",
    "ServiceUnavailableError",
    "StreamNotFinishedError",
    "StructuredOutputError",
    "SyncLLMStream",
    "ToolCall",
    "UnknownModelError",
    "Usage",
    "UsageRecord",
    "UsageSpoolFullError",
    "UsageTracker",
    "UsageTrackingError",
    "__version__",
    "warmup",
]
