"""The tracker protocol, and a base class that implements it over one ``_store`` method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, Protocol, Required, TypedDict, Unpack, runtime_checkable

from creative_services.types import CostSource, Outcome, UsageRecord

__all__ = ["BaseUsageTracker", "UsageFields", "UsageTracker"]


class UsageFields(TypedDict, total=False):
    """The keyword arguments of ``record()``: the fields of :class:`UsageRecord`."""

    llm_id: Required[int | None]
    user_id: int | str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    cost: Decimal | float | str | None
    cost_source: CostSource
    tier: str | None
    entry_name: str | None
    provider: str | None
    model: str | None
    latency_ms: float
    outcome: Outcome
    error_class: str | None
    attempts: int
    usage_estimated: bool
    may_have_been_billed: bool
    request_id: str
    metadata: Mapping[str, Any]
    created_at: NotRequired[datetime]


@runtime_checkable
class UsageTracker(Protocol):
    """Records one :class:`UsageRecord` per call. Same signature as ``DjangoUsageTracker``."""

    def record(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Store one call's usage and return the record. Raises on storage failure."""
        ...

    async def arecord(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Async twin of :meth:`record`; must not block the event loop."""
        ...


class BaseUsageTracker(ABC):
    """Builds the :class:`UsageRecord` and hands it to :meth:`_store`."""

    def record(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Store one call's usage and return the record. Raises on storage failure."""
        record = UsageRecord(**fields)  # type: ignore[arg-type]  # cost is normalised there
        self._store(record)
        return record

    async def arecord(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Async twin of :meth:`record`. Subclasses with blocking storage override it."""
        return self.record(**fields)

    @abstractmethod
    def _store(self, record: UsageRecord) -> None:
        """Persist ``record``; raise on failure."""
