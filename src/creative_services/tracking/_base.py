"""The tracker protocol, and a base class that implements it over one ``_store`` method."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, Protocol, Required, TypedDict, Unpack, runtime_checkable

from creative_services.types import CostSource, Outcome, UsageRecord

__all__ = [
    "BaseUsageTracker",
    "UsageFields",
    "UsageTracker",
    "add_observer",
    "notify_observers",
    "remove_observer",
]

_observers: tuple[Callable[[UsageRecord], None], ...] = ()
_observers_lock = threading.Lock()


def add_observer(observer: Callable[[UsageRecord], None]) -> None:
    """Call ``observer`` with every usage record any client makes, after its tracker has it.

    For test helpers such as ``creative_services.testing.capture_usage``; an observer must be
    quick and must not raise (what it raises is ignored).
    """
    global _observers
    with _observers_lock:
        _observers = (*_observers, observer)


def remove_observer(observer: Callable[[UsageRecord], None]) -> None:
    """Stop calling ``observer`` (no error when it was not registered)."""
    global _observers
    with _observers_lock:
        _observers = tuple(o for o in _observers if o is not observer)


def notify_observers(record: UsageRecord) -> None:
    """Hand ``record`` to every observer; called by the client once per record."""
    for observer in _observers:
        with contextlib.suppress(Exception):  # an observer never costs the caller its answer
            observer(record)


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
    cache_hit: bool
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
