"""Checked by ``mypy --strict`` in CI (not collected by pytest): the public API as users type it."""

from __future__ import annotations

from decimal import Decimal

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryResponseCache,
    InMemoryUsageTracker,
    LLMEntry,
    LLMResponse,
    LLMStream,
    LLMTier,
    RetryPolicy,
    Secret,
    StructuredOutputError,
    ToolCall,
    Usage,
    warmup,
)
from creative_services.testing import FakeLLM, capture_usage, override_registry


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


async def streaming_is_typed(client: DynamicLLMClient) -> tuple[str, int]:
    stream: LLMStream = client.stream(
        prompt="hi", tier="economy", timeout=30, idle_timeout=5, total_timeout=120.0
    )
    parts: list[str] = []
    async with stream:
        async for text in stream:
            parts.append(text)
    with client.stream_sync(prompt="hi", idle_timeout=5.0, total_timeout=None) as sync_stream:
        parts.extend(sync_stream)
    usage: Usage = stream.response.usage
    return "".join(parts), usage.total_tokens


def tool_calls_are_typed(response: LLMResponse) -> list[tuple[str | None, str, str]]:
    calls: tuple[ToolCall, ...] = response.tool_calls
    return [(call["id"], call["name"], call["arguments"]) for call in calls]


async def features_are_typed(client: DynamicLLMClient) -> bool:
    cached = DynamicLLMClient(DictRegistry.from_env(), cache=InMemoryResponseCache(ttl=60))
    response = await cached.generate(
        prompt="hi", tier=LLMTier.ECONOMY, escalate=True, response_format={"type": "json_object"}
    )
    try:
        await client.generate(prompt="hi", escalate=[LLMTier.STANDARD, "local"], cache=False)
    except StructuredOutputError as exc:
        return exc.raw is not None
    return response.cache_hit


def testing_kit_is_typed() -> int:
    with FakeLLM() as fake, override_registry(fake), capture_usage() as records:
        fake.reply("ok")
        warmup()
    return len(records)


def drop_in_is_typed() -> tuple[str | None, int]:
    from creative_services.openai_compat import OpenAI

    client = OpenAI()
    reply = client.chat.completions.create(
        model="standard", messages=[{"role": "user", "content": "hi"}]
    )
    chunks = client.chat.completions.create(
        model="standard", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    tokens = reply.usage.prompt_tokens if reply.usage else 0
    return reply.choices[0].message.content, tokens + sum(1 for _ in chunks)


async def async_drop_in_is_typed() -> str | None:
    from creative_services.openai_compat import AsyncOpenAI

    client = AsyncOpenAI()
    reply = await client.chat.completions.create(
        model="standard", messages=[{"role": "user", "content": "hi"}]
    )
    stream = await client.chat.completions.create(model="standard", messages=[], stream=True)
    async for chunk in stream:
        return chunk.choices[0].delta.content
    return reply.choices[0].message.content


async def original_package_shapes() -> int:
    from creative_services.completion import CompletionResponse, CompletionToolCall

    client = DynamicLLMClient.from_env()
    answer: LLMResponse = await client.generate("hi", "be brief")
    turn: CompletionResponse = await client.complete([{"role": "user", "content": "hi"}])
    first: CompletionToolCall | None = turn.first_tool_call
    arguments: dict[str, object] = first.arguments if first is not None else {}
    return answer.total_tokens + turn.total_tokens + len(arguments) + answer.usage["prompt_tokens"]
