"""Item 11: fuzzing the inputs. Whatever a caller or a configuration passes, the library raises
only CreativeServicesError subclasses, and nothing invalid reaches the network."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creative_services import (
    CreativeServicesError,
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    RetryPolicy,
)
from creative_services.registry.dict import MODELS_ENV
from creative_services.testing.fake_provider import FakeProvider

from ._helpers import KEY, entry

FUZZ = settings(
    # Modest by default (the suite runs in minutes); CS_FUZZ_EXAMPLES=2000 for a deep run.
    max_examples=int(os.environ.get("CS_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def client(fake: FakeProvider) -> DynamicLLMClient:
    return DynamicLLMClient(
        DictRegistry([entry(fake, max_tokens=16)]),
        tracker=InMemoryUsageTracker(max_records=10),
        retry_policy=RetryPolicy(max_retries=0, timeout=20),
    )


text = st.text(max_size=40) | st.sampled_from(
    ["", " ", "\x00", "hi\x00", "ok", "\u202e", "💥", "\ud800", "x" * 300]  # a lone surrogate
)
scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
    | st.binary(max_size=8)
)
anything = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
role = st.sampled_from(["user", "assistant", "system", "tool", "developer", "", "USER", None, 3])
content = text | anything
message = st.fixed_dictionaries({"role": role, "content": content}) | st.dictionaries(
    st.sampled_from(["role", "content", "name", "tool_calls"]), anything, max_size=4
)
messages = st.none() | st.lists(message, max_size=4) | anything


@given(
    prompt=st.none() | text | anything,
    msgs=messages,
    system_prompt=st.none() | text | anything,
    max_tokens=st.none() | anything,
    temperature=st.none() | anything,
    timeout=st.none() | st.floats() | st.integers(-5, 5),
)
@FUZZ
def test_any_call_arguments_raise_only_our_errors_and_invalid_ones_stay_offline(
    fake, client, prompt, msgs, system_prompt, max_tokens, temperature, timeout
):
    before = len(fake.requests)
    kwargs = {
        "prompt": prompt,
        "messages": msgs,
        "system_prompt": system_prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "timeout": timeout,
    }
    try:
        response = client.generate_sync(**kwargs)
    except CreativeServicesError as exc:
        # Rejected before any HTTP request (the fake always answers, so a request that was
        # made would have succeeded or failed as an LLMError with the fake's status).
        if not hasattr(exc, "status_code"):
            assert len(fake.requests) == before
        return
    assert response.content is not None
    assert len(fake.requests) == before + 1
    body = fake.requests[-1].body
    assert isinstance(body["messages"], list)
    assert all("\x00" not in json.dumps(m) for m in body["messages"])


@given(
    params=st.dictionaries(
        st.sampled_from(["model", "api_key", "api_base", "stream", "tier", "llm_id", "llm_name"]),
        anything,
        min_size=1,
        max_size=3,
    )
)
@FUZZ
def test_any_routing_arguments_raise_only_our_errors_offline(fake, client, params):
    before = len(fake.requests)
    routing = {k: params.pop(k) for k in ("tier", "llm_id", "llm_name") if k in params}
    try:
        client.generate_sync(prompt="hi", **routing, **params)
    except CreativeServicesError as exc:
        if not hasattr(exc, "status_code"):
            assert len(fake.requests) == before
        return
    except TypeError:
        pytest.fail("a TypeError escaped")
    # Only a routing that names the one entry, with no reserved provider parameter, may call.
    assert not params
    assert len(fake.requests) == before + 1


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


@given(
    metadata=st.none() | anything | st.integers(0, 5000).map(_deep),
    user_id=st.none() | text | st.integers() | anything,
    params=st.dictionaries(
        st.sampled_from(["stop", "seed", "logit_bias", "extra_body", "top_p", "user"]),
        anything,
        max_size=2,
    ),
)
@FUZZ
def test_any_metadata_ids_and_parameters_raise_only_our_errors_and_nothing_is_lost(
    fake, client, metadata, user_id, params
):
    before = len(fake.requests)
    try:
        response = client.generate_sync(prompt="hi", metadata=metadata, user_id=user_id, **params)
    except CreativeServicesError as exc:
        if not hasattr(exc, "status_code"):
            assert len(fake.requests) == before
        return
    assert len(fake.requests) == before + 1
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    record = tracker.records[-1]  # the answer's usage row was written, with what was passed
    assert record.request_id == response.request_id
    assert dict(record.metadata) == dict(metadata or {})
    json.dumps(fake.requests[-1].body, allow_nan=False)


field_values = {
    "id": st.none() | st.integers(-3, 3) | anything,
    "name": text | anything,
    "provider": st.sampled_from(["openai", "anthropic", "gemini", "nope", "", "OpenAI "])
    | anything,
    "model_name": text | anything,
    "tier": st.sampled_from(["economy", "standard", "premium", "local", "gold", ""]) | anything,
    "api_key": st.sampled_from([KEY, ""]) | anything,
    "api_endpoint": st.none() | st.just("http://127.0.0.1:9/v1") | anything,
    "max_tokens": st.integers(-2, 10**7) | anything,
    "temperature": st.floats() | anything,
    "cost_per_1k_input": st.none() | st.floats() | text | anything,
    "cost_per_1k_output": st.none() | st.decimals() | text | anything,
    "is_active": st.booleans() | anything,
    "priority": st.integers() | anything,
    "api_key_env": st.none() | text | anything,
    "extra_params": st.dictionaries(text, anything, max_size=2) | anything,
    "unknown_field": anything,
}
row = st.fixed_dictionaries(
    {"name": text, "provider": st.sampled_from(["openai", "anthropic"]), "model_name": text},
    optional={k: v for k, v in field_values.items() if k not in ("name", "provider", "model_name")},
) | st.dictionaries(st.sampled_from(sorted(field_values)), anything, max_size=5)
rows = st.lists(row | anything, max_size=4)


def _use(registry: DictRegistry, fake: FakeProvider) -> None:
    """Everything a client does with a registry before the network: listing and routing."""
    client = DynamicLLMClient(registry, environ={}, retry_policy=RetryPolicy(max_retries=0))
    registry.list_active()
    for tier in ("economy", "standard", "premium", "local"):
        with contextlib.suppress(CreativeServicesError):
            registry.candidates(tier)
    for found in registry.list_active():
        repr(found)
        json.dumps(found.to_dict(), default=str)
    client.close()


@given(items=rows)
@FUZZ
def test_any_registry_dicts_raise_only_our_errors(fake, items):
    before = len(fake.requests)
    try:
        registry = DictRegistry.from_dict(items)
    except CreativeServicesError:
        return
    _use(registry, fake)
    for found in registry.all_entries():
        assert isinstance(found.name, str)
        assert found.name.strip()
        assert math.isfinite(found.temperature)
        assert KEY not in repr(found)
    assert len(fake.requests) == before


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr)


@given(
    raw=st.one_of(
        rows.map(_dumps),
        st.fixed_dictionaries({"models": rows}).map(_dumps),
        anything.map(_dumps),
        st.text(max_size=60).map(lambda t: "[" + t),
        st.text(max_size=60).map(lambda t: "{" + t),
        st.sampled_from(["", " ", "[]", "{}", '{"models": 3}', "/nonexistent/cs-models.toml"]),
    ),
    key=st.none() | st.sampled_from(["OPENAI_API_KEY", "OLLAMA_HOST", "GEMINI_API_KEY"]),
)
@FUZZ
def test_any_models_env_json_raises_only_our_errors(fake, raw, key):
    before = len(fake.requests)
    environ = {MODELS_ENV: raw}
    if key:
        environ[key] = "http://127.0.0.1:9" if key == "OLLAMA_HOST" else KEY
    try:
        registry = DictRegistry.from_env(environ)
    except CreativeServicesError:
        return
    _use(registry, fake)
    assert len(fake.requests) == before
