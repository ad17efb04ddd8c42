"""Issue 14 item 9: metadata, ids, text and per-call parameters that JSON, a database column or
a provider cannot hold are refused with InvalidRequestError before any request, reservation or
cache lookup (they used to raise ValueError, TypeError, UnicodeEncodeError or RecursionError, or
to lose the usage row, or to be retried as "openai 500")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryResponseCache,
    InMemoryUsageTracker,
    InvalidRequestError,
)
from creative_services._request import MAX_DEPTH, MAX_ID_LENGTH, MAX_METADATA_BYTES

from ._helpers import entry
from .test_validation import CountingBudget


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.fixture
def budget() -> CountingBudget:
    return CountingBudget()


@pytest.fixture
def client(fake_provider, budget) -> DynamicLLMClient:
    return DynamicLLMClient(
        DictRegistry([entry(fake_provider)]),
        budget=budget,
        cache=InMemoryResponseCache(),
        tracker=InMemoryUsageTracker(),
    )


SURROGATE = "bad \ud800 text"


def part(text: Any) -> dict[str, Any]:
    """One user message of one text content part."""
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}


BAD = [
    ({"metadata": "x"}, "metadata"),
    ({"metadata": [1]}, "metadata"),
    ({"metadata": nested(5000)}, "metadata"),
    ({"metadata": nested(MAX_DEPTH)}, "metadata"),  # its leaf is one level too deep
    ({"metadata": {"score": float("nan")}}, "metadata"),
    ({"metadata": {"score": float("inf")}}, "metadata"),
    ({"metadata": {"when": object()}}, "metadata"),
    ({"metadata": {"items": {1, 2}}}, "metadata"),
    ({"metadata": {"note": "a\x00b"}}, "metadata"),
    ({"metadata": {"a\x00": 1}}, "metadata"),
    ({"metadata": {1: "int key"}}, "metadata"),
    ({"metadata": {"note": SURROGATE}}, "metadata"),
    ({"metadata": {"blob": "x" * MAX_METADATA_BYTES}}, "metadata"),
    ({"user_id": "u" * (MAX_ID_LENGTH + 1)}, "user_id"),
    ({"user_id": "u\x00"}, "user_id"),
    ({"user_id": SURROGATE}, "user_id"),
    ({"user_id": 1.5}, "user_id"),
    ({"user_id": b"7"}, "user_id"),
    ({"tenant_id": "t" * (MAX_ID_LENGTH + 1)}, "tenant_id"),
    ({"tenant_id": ["acme"]}, "tenant_id"),
    ({"prompt": SURROGATE}, "prompt"),
    ({"system_prompt": SURROGATE}, "system_prompt"),
    ({"messages": [{"role": "user", "content": SURROGATE}]}, "messages"),
    (part("a\x00b"), "messages"),
    (part(SURROGATE), "messages"),
    ({"messages": [{"role": "user", "content": "hi", "name": object()}]}, "messages"),
    (part(nested(40)), "messages"),
    ({"stop": [object()]}, "stop"),
    ({"seed": float("nan")}, "seed"),
    ({"logit_bias": {"50256": float("inf")}}, "logit_bias"),
    ({"extra_body": {"x": {1, 2}}}, "extra_body"),
    ({"extra_headers": {"X-Note": "a\x00"}}, "extra_headers"),
    ({"stop": [SURROGATE]}, "stop"),
]


@pytest.mark.parametrize(("kwargs", "param"), BAD, ids=[f"{i}-{p}" for i, (_, p) in enumerate(BAD)])
async def test_what_json_or_a_column_cannot_hold_is_refused_before_anything(
    client, fake_provider, budget, kwargs, param
):
    call = {"prompt": "hi", **kwargs} if "messages" not in kwargs else kwargs
    with pytest.raises(InvalidRequestError) as info:
        await client.generate(**call)
    assert info.value.param == param
    with pytest.raises(InvalidRequestError):
        client.generate_sync(**call)
    assert fake_provider.requests == []
    assert budget.reservations == []
    assert list(client.tracker.records) == []  # type: ignore[union-attr]


async def test_values_at_the_limits_are_sent_and_recorded(client, fake_provider):
    user = "u" * MAX_ID_LENGTH
    metadata = {**nested(MAX_DEPTH - 1), "emoji": "💥", "n": 1.5, "none": None}  # leaf at the limit
    response = await client.generate(
        prompt="héllo 💥", user_id=user, tenant_id="acme", metadata=metadata, stop=["\n\n"]
    )
    assert response.content
    (record,) = client.tracker.records
    assert record.user_id == user
    assert record.metadata == metadata
    assert fake_provider.requests[-1].body["stop"] == ["\n\n"]


async def test_a_uuid_user_id_is_recorded_as_its_text(client):
    user = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await client.generate(prompt="hi", user_id=user)  # type: ignore[arg-type]
    (record,) = client.tracker.records
    assert record.user_id == str(user)


def test_a_tracker_refuses_metadata_it_could_not_store():
    tracker = InMemoryUsageTracker()
    with pytest.raises(InvalidRequestError) as info:
        tracker.record(llm_id=1, metadata={"score": float("nan")})
    assert info.value.param == "metadata"
    with pytest.raises(InvalidRequestError):
        tracker.record(llm_id=1, user_id="x" * 300)
    assert list(tracker.records) == []
