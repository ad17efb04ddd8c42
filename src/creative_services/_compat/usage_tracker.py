"""``creative_services.core.usage_tracker`` of the original package, over today's trackers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from creative_services.tracking import InMemoryUsageTracker, UsageTracker
from creative_services.types import LLMEntry, Usage, UsageRecord

__all__ = [
    "InMemoryTracker",
    "UsageRecord",
    "UsageStats",
    "UsageTracker",
    "calculate_cost",
    "stats_of",
]


@dataclass(frozen=True, slots=True)
class UsageStats:
    """Sums over usage records, in the original package's shape (cost as a float)."""

    total_requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    total_tokens_input: int = 0
    total_tokens_output: int = 0
    total_cost: float = 0.0
    avg_latency_ms: float = 0.0


def stats_of(records: list[UsageRecord]) -> UsageStats:
    """The sums of ``records`` (pure)."""
    ok = sum(r.outcome == "success" for r in records)
    return UsageStats(
        total_requests=len(records),
        successful_requests=ok,
        failed_requests=len(records) - ok,
        total_tokens_input=sum(r.prompt_tokens for r in records),
        total_tokens_output=sum(r.completion_tokens + r.reasoning_tokens for r in records),
        total_cost=float(sum((r.cost for r in records if r.cost is not None), Decimal(0))),
        avg_latency_ms=sum(r.latency_ms for r in records) / len(records) if records else 0.0,
    )


_ORIGINAL_FIELDS = {"tokens_input": "prompt_tokens", "tokens_output": "completion_tokens"}


class InMemoryTracker(InMemoryUsageTracker):
    """Today's in-memory tracker with the original ``get_stats()``.

    ``record()`` also takes the original names: ``tokens_input``/``tokens_output``,
    ``success=False`` (an ``error`` outcome).
    """

    def record(self, **fields: Any) -> UsageRecord:
        """Store one call's usage; the original field names are accepted."""
        for old, new in _ORIGINAL_FIELDS.items():
            if old in fields:
                fields[new] = fields.pop(old)
        if "success" in fields:
            fields["outcome"] = "success" if fields.pop("success") else "error"
        fields.setdefault("llm_id", None)
        return super().record(**fields)

    def get_stats(
        self,
        user_id: int | str | None = None,
        llm_id: int | None = None,
        since: datetime | None = None,
    ) -> UsageStats:
        """Sums over the kept records, optionally of one user, one entry, since a moment."""
        with self._lock:
            records = list(self.records)
        chosen = [
            r
            for r in records
            if (user_id is None or r.user_id == user_id)
            and (llm_id is None or r.llm_id == llm_id)
            and (since is None or r.created_at >= since)
        ]
        return stats_of(chosen)


def _provider_of(model: str) -> str:
    name = model.lower()
    for prefix, provider in (("claude", "anthropic"), ("gemini", "gemini"), ("mistral", "mistral")):
        if name.startswith(prefix):
            return provider
    return "openai"


def calculate_cost(
    model: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    provider: str | None = None,
) -> float:
    """Cost in USD from LiteLLM's bundled price map; 0.0 when the model is not priced there."""
    from creative_services import _litellm
    from creative_services.pricing import resolve_cost

    provider = provider or _provider_of(model)
    entry = LLMEntry(name=model, provider=provider, model_name=model)
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    cost, _ = resolve_cost(usage, entry, map_prices=_litellm.map_prices(provider, model))
    return float(cost) if cost is not None else 0.0
