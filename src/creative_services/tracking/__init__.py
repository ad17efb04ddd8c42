"""Usage trackers: where each call's books go. :class:`UsageTracker` is the protocol."""

from creative_services.tracking._base import (
    BaseUsageTracker,
    UsageFields,
    UsageTracker,
    add_observer,
    remove_observer,
)
from creative_services.tracking.memory import InMemoryUsageTracker, UsageTotals
from creative_services.tracking.sqlite import SQLiteUsageTracker, default_usage_db_path

__all__ = [
    "BaseUsageTracker",
    "InMemoryUsageTracker",
    "SQLiteUsageTracker",
    "UsageFields",
    "UsageTotals",
    "UsageTracker",
    "add_observer",
    "default_usage_db_path",
    "remove_observer",
]
