"""An in-memory tracker with running totals, for tests, scripts and the default client."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal

from creative_services.tracking._base import BaseUsageTracker
from creative_services.types import UsageRecord

__all__ = ["InMemoryUsageTracker", "UsageTotals"]


@dataclass(slots=True)
class UsageTotals:
    """Sums over a group of records. ``cost`` counts known costs only; ``unpriced`` the rest."""

    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0

    def add(self, record: UsageRecord) -> None:
        """Add one record to the sums."""
        self.calls += 1
        self.failures += record.outcome != "success"
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.total_tokens += record.total_tokens
        if record.cost is None:
            self.unpriced += 1
        else:
            self.cost += record.cost


class InMemoryUsageTracker(BaseUsageTracker):
    """Keeps recent records (thread-safe) and all-time totals by user, entry and tier.

    ``max_records`` bounds memory in long-running processes; totals count every record.
    """

    def __init__(self, *, max_records: int | None = 10_000) -> None:
        self._lock = threading.Lock()
        self.records: deque[UsageRecord] = deque(maxlen=max_records)
        self.total = UsageTotals()
        self.by_user: defaultdict[int | str | None, UsageTotals] = defaultdict(UsageTotals)
        self.by_entry: defaultdict[int | None, UsageTotals] = defaultdict(UsageTotals)
        self.by_tier: defaultdict[str | None, UsageTotals] = defaultdict(UsageTotals)

    def _store(self, record: UsageRecord) -> None:
        with self._lock:
            self.records.append(record)
            self.total.add(record)
            self.by_user[record.user_id].add(record)
            self.by_entry[record.llm_id].add(record)
            self.by_tier[record.tier].add(record)

    def __repr__(self) -> str:
        return f"InMemoryUsageTracker(records={len(self.records)})"
