"""Item 7: configuration and input errors are typed and raised before any HTTP call or budget
reservation (tests/test_client.py covers the basic bad-input table without a budget)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from creative_services import (
    BudgetLimit,
    ConfigurationError,
    DictRegistry,
    DynamicLLMClient,
    InMemoryBudget,
    InvalidEntryError,
    InvalidRequestError,
    InvalidTierError,
    MissingAPIKeyError,
    NoActiveEntryError,
    UnknownModelError,
)
from creative_services.budgets import Reservation

from ._helpers import entry


class CountingBudget(InMemoryBudget):
    """An in-memory budget that remembers every reservation asked of it."""

    def __init__(self) -> None:
        super().__init__([BudgetLimit("global", "month", Decimal(1000))])
        self.reservations: list[Reservation] = []

    async def areserve(self, **kwargs: Any) -> Reservation:
        reservation = await super().areserve(**kwargs)
        self.reservations.append(reservation)
        return reservation


@pytest.fixture
def budget() -> CountingBudget:
    return CountingBudget()


def client_for(entries: list[Any], budget: CountingBudget, **kw: Any) -> DynamicLLMClient:
    return DynamicLLMClient(DictRegistry(entries), budget=budget, **kw)


BAD_INPUT = [
    {"messages": []},
    {"messages": [{"role": "user", "content": "   "}]},
    {"messages": [{"role": None, "content": "hi"}]},
    {"messages": [{"content": "hi"}]},
    {"messages": [{"role": "User", "content": "hi"}]},
    {"messages": [{"role": "user", "content": b"bytes"}]},
    {"messages": [{"role": "user", "content": {"text": "hi"}}]},
    {"messages": [{"role": "user", "content": []}]},
    {"messages": [{"role": "user", "content": "a\x00b"}]},
    {"messages": ["hi"]},
    {"messages": {"role": "user", "content": "hi"}},
    {"messages": [{"role": "system", "content": "only system"}]},
    {"prompt": "hi", "system_prompt": "sys\x00tem"},
    {"prompt": "hi", "system_prompt": 5},
    {"prompt": b"hi"},
    {"prompt": ["hi"]},
    {"prompt": "hi", "max_tokens": -5},
    {"prompt": "hi", "max_tokens": True},
    {"prompt": "hi", "max_tokens": float("nan")},
    {"prompt": "hi", "max_tokens": float("inf")},
    {"prompt": "hi", "max_tokens": 10**18},
    {"prompt": "hi", "max_tokens": "100"},
    {"prompt": "hi", "temperature": -0.1},
    {"prompt": "hi", "temperature": float("inf")},
    {"prompt": "hi", "temperature": float("-nan")},
    {"prompt": "hi", "temperature": 1e308},
    {"prompt": "hi", "temperature": "0.5"},
    {"prompt": "hi", "timeout": -1},
    {"prompt": "hi", "timeout": float("nan")},
    {"prompt": "hi", "timeout": float("inf")},
    {"prompt": "hi", "api_key": "sk-" + "fault-smuggled-0000000000"},
    {"prompt": "hi", "api_base": "http://elsewhere.invalid"},
    {"prompt": "hi", "stream": True},
]


@pytest.mark.parametrize("kwargs", BAD_INPUT, ids=repr)
async def test_bad_input_is_typed_before_any_request_or_reservation(fake_provider, budget, kwargs):
    client = client_for([entry(fake_provider)], budget)
    with pytest.raises(InvalidRequestError):
        await client.generate(**kwargs)
    with pytest.raises(InvalidRequestError):
        client.generate_sync(**kwargs)
    assert fake_provider.requests == []
    assert budget.reservations == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"llm_name": "missing"}, UnknownModelError),
        ({"llm_id": 42}, UnknownModelError),
        ({"llm_name": "disabled"}, UnknownModelError),
        ({"tier": "premium"}, NoActiveEntryError),
        ({"tier": "ultra"}, InvalidTierError),
        ({"llm_name": "needs-env"}, MissingAPIKeyError),
        ({"tier": "economy"}, MissingAPIKeyError),  # a later candidate's key is unset
    ],
    ids=repr,
)
async def test_registry_problems_are_typed_before_any_request_or_reservation(
    fake_provider, budget, kwargs, error
):
    entries = [
        entry(fake_provider),
        entry(fake_provider, name="disabled", is_active=False),
        entry(fake_provider, name="needs-env", api_key="", api_key_env="CS_FAULT_UNSET_KEY"),
        entry(fake_provider, name="cheap", tier="economy"),
        entry(fake_provider, name="cheap-2", tier="economy", api_key="", priority=5),
    ]
    client = client_for(entries, budget, environ={})
    with pytest.raises(error) as info:
        await client.generate(prompt="hi", **kwargs)
    assert isinstance(info.value, ConfigurationError)
    assert fake_provider.requests == []
    assert budget.reservations == []


@pytest.mark.parametrize(
    "row",
    [
        {"name": "x", "provider": "openai"},
        {"name": "x", "provider": "openai", "model_name": "m", "tier": "gold"},
        {"name": "x", "provider": "openai", "model_name": "m", "max_tokens": 0},
        {"name": "x", "provider": "openai", "model_name": "m", "max_tokens": "many"},
        {"name": "x", "provider": "openai", "model_name": "m", "temperature": float("nan")},
        {"name": "x", "provider": "openai", "model_name": "m", "cost_per_1k_input": "-1"},
        {"name": "x", "provider": "openai", "model_name": "m", "cost_per_1k_output": "abc"},
        {"name": "x", "provider": "openai", "model_name": "m", "api_key": 12345},
        {"name": "x", "provider": "openai", "model_name": "m", "extra_params": 3},
        {"name": "x", "provider": "openai", "model_name": "m", "apikey": "typo"},
        {"name": "x", "provider": "openai", "model_name": "m", "id": "1"},
        "not a mapping",
    ],
    ids=repr,
)
def test_malformed_registry_rows_are_typed(row):
    with pytest.raises(InvalidEntryError):
        DictRegistry.from_dict([row])


@pytest.mark.parametrize(
    ("field", "value"),
    [("priority", "x"), ("priority", 1.5), ("is_active", "no"), ("is_active", None)],
)
def test_fields_that_order_candidates_are_type_checked(field, value):
    # A str priority next to an int one made candidates() raise a bare TypeError.
    rows = [
        {"name": "a", "provider": "openai", "model_name": "m", field: value},
        {"name": "b", "provider": "openai", "model_name": "m"},
    ]
    with pytest.raises(InvalidEntryError, match=field):
        DictRegistry.from_dict(rows)


def test_duplicate_names_are_typed():
    row = {"name": "x", "provider": "openai", "model_name": "m"}
    with pytest.raises(InvalidEntryError):
        DictRegistry.from_dict([row, row])
