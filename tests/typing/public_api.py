"""Checked by ``mypy --strict`` in CI (not collected by pytest): the public API as users type it."""

from __future__ import annotations

from decimal import Decimal

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    LLMEntry,
    LLMResponse,
    LLMTier,
    RetryPolicy,
    Secret,
)


async def seed_example() -> str | None:
    registry = DictRegistry.from_env()
    client = DynamicLLMClient(registry)
    response: LLMResponse = await client.generate(prompt="hi", tier=LLMTier.STANDARD)
    return response.content


def entries_accept_plain_values() -> tuple[Secret, Decimal | None]:
    entry = LLMEntry(
        name="a",
        provider="openai",
        model_name="gpt-4o-mini",
        tier="premium",
        api_key="sk-placeholder",
        cost_per_1k_input=0.15,
        cost_per_1k_output="0.6",
    )
    client = DynamicLLMClient(
        DictRegistry([entry]), tracker=InMemoryUsageTracker(), retry_policy=RetryPolicy(timeout=30)
    )
    cost = client.generate_sync(prompt="hi", llm_name="a").cost
    return entry.api_key, cost
