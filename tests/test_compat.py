"""The original creative-services package's documented usage, run against the loopback fake.

Each test is one usage of the original's README/Sphinx pages or of a real consumer (a chat agent's
tool loop over ``complete()``, a CAD backend's ``LLMClient(LLMConfig(...))``, Travel Beat's
``DynamicLLMClient.from_env()``). The Django ones are in tests/contrib/django/test_compat.py.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from creative_services import (
    ConfigurationError,
    DictRegistry,
    DynamicLLMClient,
    LLMEntry,
    LLMTier,
    NoActiveEntryError,
    UnknownModelError,
)
from creative_services._compat import reset_warnings
from creative_services.core._names import BFAGENT, CORE, DJANGO, TOP_LEVEL
from creative_services.testing.fake_provider import FakeProvider, completion_body
from creative_services.tier_map import derive_tier

KEY = "sk-" + "test-compat-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    reset_warnings()
    yield
    reset_warnings()


@pytest.fixture
def openai_env(
    monkeypatch: pytest.MonkeyPatch, fake_provider: FakeProvider, tmp_path: Any
) -> FakeProvider:
    """Only an OpenAI key in the environment, pointed at the fake (as a deployment would be)."""
    monkeypatch.setenv("CREATIVE_SERVICES_USAGE_DB", str(tmp_path / "usage.db"))
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CREATIVE_SERVICES_MODELS", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_provider.base_url)
    return fake_provider


def old(module: str, name: str) -> Any:
    """``from <module> import <name>`` of the original package, its warning expected."""
    with pytest.warns(DeprecationWarning, match="original creative-services API"):
        return getattr(importlib.import_module(module), name)


def tool_call_reply(fake: FakeProvider, calls: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Queue an OpenAI answer that asks for ``calls`` (id, name, arguments)."""
    body = completion_body("", model="gpt-4o-mini", prompt_tokens=20, completion_tokens=7)
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in calls
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"
    fake.fail(200, body=body)  # a scripted raw body: status 200 is an answer


WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


# --- the old import paths: every name, one warning each, naming its replacement ------------------


@pytest.mark.parametrize(
    ("module", "name"),
    [
        *[("creative_services.core", n) for n in CORE],
        *[("creative_services.adapters.django_adapter", n) for n in DJANGO],
        *[("creative_services.adapters.bfagent_compat", n) for n in BFAGENT],
        *[("creative_services", n) for n in TOP_LEVEL],
    ],
)
def test_each_old_name_warns_once_naming_its_replacement(module: str, name: str) -> None:
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"{name} is the original") as caught:
        first = getattr(mod, name)
    table = {**CORE, **DJANGO, **BFAGENT}
    assert len(caught) == 1
    assert table[name][1] in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(mod, name) is first  # the second use is silent


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("creative_services.core.llm_registry", ["LLMTier", "LLMEntry", "LLMRegistry"]),
        ("creative_services.core.llm_registry", ["DictRegistry", "DynamicLLMClient"]),
        ("creative_services.core.llm_client", ["LLMClient", "LLMConfig", "LLMProvider"]),
        ("creative_services.core.llm_client", ["LLMResponse", "CompletionResponse", "ToolCall"]),
        ("creative_services.core.usage_tracker", ["UsageRecord", "UsageStats", "UsageTracker"]),
        ("creative_services.core.usage_tracker", ["InMemoryTracker", "calculate_cost"]),
    ],
)
def test_the_original_modules_have_their_names(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    for name in names:
        assert old(module, name) is getattr(mod, name)


def test_an_unknown_old_name_is_an_attribute_error() -> None:
    import creative_services.core.llm_registry as mod

    with pytest.raises(AttributeError, match="Nope"):
        mod.Nope  # noqa: B018


# --- core.llm_registry ------------------------------------------------------------------------


def test_original_entry_takes_model_and_float_prices() -> None:
    entry_cls = old("creative_services.core.llm_registry", "LLMEntry")
    entry = entry_cls(
        id=3, name="mini", provider="openai", model="gpt-4o-mini", tier=LLMTier.ECONOMY,
        api_key=KEY, api_endpoint=None, max_tokens=1000, temperature=0.2,
        cost_per_1k_input=0.00015, cost_per_1k_output=0.0006, is_active=True,
    )  # fmt: skip
    assert isinstance(entry, LLMEntry)
    assert entry.model == entry.model_name == "gpt-4o-mini"
    assert str(entry.cost_per_1k_input) == "0.00015"
    assert KEY not in repr(entry)


def test_original_dict_registry_returns_none_where_todays_raises() -> None:
    entry_cls = old("creative_services.core.llm_registry", "LLMEntry")
    registry_cls = old("creative_services.core.llm_registry", "DictRegistry")
    entry = entry_cls(name="mini", provider="openai", model="gpt-4o-mini")
    registry = registry_cls([entry])
    assert registry.get_by_id(99) is None
    assert registry.get_by_name("nope") is None
    assert registry.get_by_tier(LLMTier.PREMIUM) is None
    assert registry.get_by_tier(LLMTier.STANDARD).name == "mini"
    assert [e.name for e in registry.list_active()] == ["mini"]
    today = DictRegistry([LLMEntry(name="mini", provider="openai", model_name="gpt-4o-mini")])
    with pytest.raises(UnknownModelError):
        today.get_by_id(99)
    with pytest.raises(NoActiveEntryError):
        today.get_by_tier(LLMTier.PREMIUM)


async def test_original_client_generate_takes_system_prompt_positionally(
    fake_provider: FakeProvider,
) -> None:
    entry_cls = old("creative_services.core.llm_registry", "LLMEntry")
    registry_cls = old("creative_services.core.llm_registry", "DictRegistry")
    client_cls = old("creative_services.core.llm_registry", "DynamicLLMClient")
    registry = registry_cls(
        [entry_cls(name="f", provider="openai", model="gpt-4o-mini", api_key=KEY,
                   api_endpoint=fake_provider.base_url)]
    )  # fmt: skip
    fake_provider.reply("A story.", prompt_tokens=12, completion_tokens=3)
    response = await client_cls(registry).generate(
        "Write a story", "You are a writer", tier=LLMTier.STANDARD
    )
    assert response.content == "A story."
    assert response.total_tokens == 15
    assert response.usage["total_tokens"] == 15
    assert response.provider == "openai"
    messages = fake_provider.requests[0].body["messages"]
    assert messages[0] == {"role": "system", "content": "You are a writer"}


def test_original_from_env_without_keys_is_empty_todays_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client_cls = old("creative_services.core.llm_registry", "DynamicLLMClient")
    registry_cls = old("creative_services.core.llm_registry", "DictRegistry")
    assert client_cls.from_env(environ={}).registry.list_active() == []
    assert registry_cls.from_env(environ={}).list_active() == []
    with pytest.raises(ConfigurationError, match="no LLM configured"):
        DynamicLLMClient.from_env(environ={})


async def test_travel_beat_from_env(openai_env: FakeProvider) -> None:
    openai_env.reply("Lisbon in three days.")
    client = DynamicLLMClient.from_env()
    response = await client.generate("Plan a trip", "You are a travel agent")
    assert response.content == "Lisbon in three days."
    assert openai_env.requests[0].body["messages"][0]["role"] == "system"


async def test_a_five_method_registry_of_the_original_is_accepted(
    fake_provider: FakeProvider,
) -> None:
    entry = LLMEntry(
        id=7, name="mine", provider="openai", model_name="gpt-4o-mini", api_key=KEY,
        api_endpoint=fake_provider.base_url,
    )  # fmt: skip

    class MyRegistry:  # the original protocol: no candidates(), None on a miss
        def get_by_id(self, llm_id: int) -> LLMEntry | None:
            return entry if llm_id == 7 else None

        def get_by_name(self, name: str) -> LLMEntry | None:
            return entry if name == "mine" else None

        def get_by_tier(self, tier: LLMTier) -> LLMEntry | None:
            return entry if tier is LLMTier.STANDARD else None

        def get_default(self) -> LLMEntry:
            return entry

        def list_active(self) -> list[LLMEntry]:
            return [entry]

    with pytest.warns(DeprecationWarning, match="candidates"):
        client = DynamicLLMClient(MyRegistry())
    assert (await client.generate("hi")).content == "fake answer"
    assert (await client.generate("hi", llm_id=7)).entry.id == 7
    with pytest.raises(UnknownModelError):
        await client.generate("hi", llm_id=8)
    with pytest.raises(NoActiveEntryError):
        await client.generate("hi", tier="premium")
    assert len(fake_provider.requests) == 2


def test_a_five_method_registry_falls_back_from_its_own_choice() -> None:
    from creative_services.registry._relaxed import RelaxedRegistry

    a = LLMEntry(name="a", provider="openai", model_name="gpt-4o-mini")
    b = LLMEntry(name="b", provider="openai", model_name="gpt-4o-mini")

    class Mine:
        def get_by_id(self, llm_id: int) -> None:
            return None

        def get_by_name(self, name: str) -> None:
            return None

        def get_by_tier(self, tier: LLMTier) -> LLMEntry | None:
            return b if tier is LLMTier.STANDARD else None

        def get_default(self) -> None:
            return None

        def list_active(self) -> list[LLMEntry]:
            return [a, b]

    registry = RelaxedRegistry(Mine())
    assert [e.name for e in registry.candidates("standard")] == ["b", "a"]
    with pytest.raises(NoActiveEntryError):
        registry.get_default()
    with pytest.raises(UnknownModelError):
        registry.get_by_name("a")


def test_something_that_is_no_registry_is_still_refused() -> None:
    with pytest.raises(ConfigurationError, match="must implement LLMRegistry"):
        DynamicLLMClient(object())  # type: ignore[arg-type]


# --- core.llm_client: the CAD backend and the chat agent's tool loop -----------------------------


async def test_cad_backend_llm_client_over_llm_config(openai_env: FakeProvider) -> None:
    client_cls = old("creative_services.core.llm_client", "LLMClient")
    config_cls = old("creative_services.core.llm_client", "LLMConfig")
    provider = old("creative_services.core.llm_client", "LLMProvider")
    client = client_cls(config_cls(provider=provider.OPENAI, model="gpt-4o-mini", max_tokens=2048))
    openai_env.reply("A bracket, 40 mm.", prompt_tokens=9, completion_tokens=6, model="gpt-4o-mini")
    response = await client.generate("Design a bracket", system_prompt="You are a CAD expert")
    assert (response.content, response.model, response.provider) == (
        "A bracket, 40 mm.", "gpt-4o-mini", "openai",
    )  # fmt: skip
    assert response.total_tokens == 15
    body = openai_env.requests[0].body
    assert (body["model"], body["max_tokens"]) == ("gpt-4o-mini", 2048)
    assert openai_env.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(client)
    assert KEY not in repr(client.config)
    assert [p.value for p in provider] == ["openai", "anthropic", "groq", "ollama"]


async def run_agent(backend: Any, fake: FakeProvider, tools: list[dict[str, Any]]) -> str:
    """The chat agent's loop: call, run the tools asked for, feed results back, until text."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    for _ in range(3):
        response = await backend.complete(messages=messages, tools=tools, tool_choice="auto")
        if not response.has_tool_calls:
            assert response.model == "gpt-4o-mini"
            return str(response.content)
        calls = response.tool_calls
        messages.append(
            {
                "role": "assistant",
                "content": response.content,
                "tool_calls": [
                    {"id": c.id, "type": "function",
                     "function": {"name": c.name, "arguments": c.arguments}}
                    for c in calls
                ],
            }
        )  # fmt: skip
        for call in calls:
            assert isinstance(call.arguments, dict)
            result = {"city": call.arguments["city"], "temp": 21}
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
            )
    raise AssertionError("the agent did not finish")


@pytest.mark.parametrize(
    "tools", [[WEATHER_OPENAI], [WEATHER_ANTHROPIC]], ids=["openai", "anthropic"]
)
async def test_chat_agent_tool_loop_on_todays_client(
    fake_provider: FakeProvider, tools: list[dict[str, Any]]
) -> None:
    entry = LLMEntry(
        name="agent", provider="openai", model_name="gpt-4o-mini", api_key=KEY,
        api_endpoint=fake_provider.base_url,
    )  # fmt: skip
    tool_call_reply(fake_provider, [("call_1", "get_weather", {"city": "Paris"})])
    fake_provider.reply("21 degrees in Paris.", model="gpt-4o-mini")
    answer = await run_agent(DynamicLLMClient(DictRegistry([entry])), fake_provider, tools)

    assert answer == "21 degrees in Paris."
    first, second = (r.body for r in fake_provider.requests)
    assert first["tools"] == [WEATHER_OPENAI]
    assert first["tool_choice"] == "auto"
    assistant, tool = second["messages"][1], second["messages"][2]
    call = assistant["tool_calls"][0]
    assert (call["id"], json.loads(call["function"]["arguments"])) == ("call_1", {"city": "Paris"})
    assert tool == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"city": "Paris", "temp": 21}',
    }


async def test_chat_agent_on_the_cad_backend(openai_env: FakeProvider) -> None:
    client_cls = old("creative_services.core.llm_client", "LLMClient")
    config_cls = old("creative_services.core.llm_client", "LLMConfig")
    backend = client_cls(config_cls(model="gpt-4o-mini", max_tokens=2048))
    tool_call_reply(openai_env, [("c1", "get_weather", {"city": "Oslo"})])
    openai_env.reply("Cold in Oslo.", model="gpt-4o-mini")
    assert await run_agent(backend, openai_env, [WEATHER_OPENAI]) == "Cold in Oslo."
    assert len(openai_env.requests) == 2


async def test_completion_response_shape(fake_provider: FakeProvider) -> None:
    tool_call_cls = old("creative_services.core.llm_client", "ToolCall")
    entry = LLMEntry(
        name="a", provider="openai", model_name="gpt-4o-mini", api_key=KEY,
        api_endpoint=fake_provider.base_url,
    )  # fmt: skip
    tool_call_reply(fake_provider, [("a", "f", {"x": 1}), ("b", "g", {})])
    response = await DynamicLLMClient(DictRegistry([entry])).complete(
        [{"role": "user", "content": "go"}], tools=[WEATHER_ANTHROPIC]
    )
    assert response.has_tool_calls
    assert response.first_tool_call == tool_call_cls("a", "f", {"x": 1})
    assert [c.name for c in response.tool_calls] == ["f", "g"]
    assert response.usage == {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
    assert response.total_tokens == 27
    assert response.provider == "openai"
    assert response.raw_response is response.response
    with pytest.raises(AttributeError):
        response.first_tool_call.name = "other"  # type: ignore[misc,union-attr]  # frozen
    assert response.to_message()["tool_calls"][0]["function"]["arguments"] == '{"x": 1}'


# --- core.usage_tracker -------------------------------------------------------------------------


async def test_in_memory_tracker_records_and_stats_by_user(fake_provider: FakeProvider) -> None:
    tracker_cls = old("creative_services.core.usage_tracker", "InMemoryTracker")
    stats_cls = old("creative_services.core.usage_tracker", "UsageStats")
    tracker = tracker_cls()
    entry = LLMEntry(
        id=1, name="a", provider="openai", model_name="gpt-4o-mini", api_key=KEY,
        api_endpoint=fake_provider.base_url, cost_per_1k_input="1", cost_per_1k_output="2",
    )  # fmt: skip
    fake_provider.reply("ok", prompt_tokens=100, completion_tokens=50)
    client = DynamicLLMClient(DictRegistry([entry]), tracker=tracker)
    await client.generate("hi", user_id=7)
    tracker.record(llm_id=1, user_id=7, prompt_tokens=10, completion_tokens=5, cost=0.5,
                   latency_ms=100.0, success=False)  # fmt: skip
    tracker.record(llm_id=1, user_id=8, tokens_input=1, tokens_output=1, cost=0.001)

    stats = tracker.get_stats(user_id=7)
    assert isinstance(stats, stats_cls)
    assert (stats.total_requests, stats.successful_requests, stats.failed_requests) == (2, 1, 1)
    assert (stats.total_tokens_input, stats.total_tokens_output) == (110, 55)
    assert stats.total_cost == pytest.approx(0.2 + 0.5)
    assert stats.avg_latency_ms > 0
    assert tracker.get_stats().total_requests == 3
    assert tracker.records[0].timestamp == tracker.records[0].created_at


def test_calculate_cost_from_the_bundled_price_map() -> None:
    calculate_cost = old("creative_services.core.usage_tracker", "calculate_cost")
    cost = calculate_cost("gpt-4o-mini", prompt_tokens=1_000_000, completion_tokens=0)
    assert cost == pytest.approx(0.15)
    assert calculate_cost("no-such-model", prompt_tokens=10, completion_tokens=10) == 0.0


# --- adapters: the bridge, generate_text, TIER_MAPPING ----------------------------------------


@pytest.fixture
def fresh_bridge() -> Iterator[None]:
    from creative_services._compat.bfagent import BFAgentLLMBridge

    BFAgentLLMBridge._instance = None
    yield
    BFAgentLLMBridge._instance = None


async def test_adapters_generate_text_and_async(
    openai_env: FakeProvider, fresh_bridge: None
) -> None:
    generate_text = old("creative_services.adapters", "generate_text")
    generate_text_async = old("creative_services.adapters", "generate_text_async")
    openai_env.reply("sync text")
    openai_env.reply("async text")
    assert await _in_thread(generate_text, "Hello", "Be brief", tier="premium") == "sync text"
    response = await generate_text_async("Hello", tier="economy")
    assert response.content == "async text"
    models = [r.body["model"] for r in openai_env.requests]
    assert models == ["gpt-4.1", "gpt-4.1-nano"]


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_bridge_original_methods(openai_env: FakeProvider, fresh_bridge: None) -> None:
    from creative_services.adapters import BFAgentLLMBridge

    with pytest.warns(DeprecationWarning, match="get_instance"):
        bridge = BFAgentLLMBridge.get_instance()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert BFAgentLLMBridge.get_instance() is bridge
    with pytest.warns(DeprecationWarning, match="get_available_llms"):
        llms = bridge.get_available_llms()
    assert {"id", "name", "provider", "model", "tier"} <= set(llms[0])
    with pytest.warns(DeprecationWarning, match="get_llm_for_tier"):
        premium = bridge.get_llm_for_tier("premium")
    assert premium is not None
    assert premium["model"] == "gpt-4.1"
    assert bridge.get_llm_for_tier("gold") is None
    openai_env.reply("whole response")
    with pytest.warns(DeprecationWarning, match="generate_async"):
        response = await bridge.generate_async("Hello", "Be brief", tier="standard")
    assert response.content == "whole response"
    openai_env.reply("by id")
    assert (await bridge.generate_async("Hello", llm_id=llms[0]["id"])).content == "by id"


def test_tier_mapping_is_importable_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from creative_services.adapters import TIER_MAPPING
    assert TIER_MAPPING["gpt-4o-mini"] is LLMTier.STANDARD


@pytest.mark.parametrize(
    ("model", "provider", "tier"),
    [
        ("gpt-4o-mini", "openai", "standard"),  # the original's assignments are kept
        ("gpt-4o", "openai", "premium"),
        ("gpt-4o-mini-2024-07-18", "openai", "standard"),  # a dated variant
        ("openai/gpt-4.1-nano", "openai", "economy"),  # a provider prefix
        ("claude-3-5-haiku-20241022", "anthropic", "economy"),
        ("claude-sonnet-4-5", "anthropic", "standard"),
        ("claude-opus-4-1-20250805", "anthropic", "premium"),
        ("gemini-2.5-pro", "gemini", "premium"),
        ("llama-3.3-70b-versatile", "groq", "economy"),
        ("mistral-large-latest", "mistral", "premium"),
        ("qwen3:8b", "ollama", "local"),  # any Ollama model
        ("unknown-model", "openai", "standard"),  # the default
    ],
)
def test_derive_tier_covers_current_models(model: str, provider: str, tier: str) -> None:
    assert derive_tier(model, provider) is LLMTier(tier)


def test_derive_tier_rule_and_default() -> None:
    assert derive_tier("x", rule={"x": "premium"}) is LLMTier.PREMIUM
    assert derive_tier("x", rule=lambda m, p: None, default="economy") is LLMTier.ECONOMY
    assert derive_tier("x", "p", rule=lambda m, p: "local") is LLMTier.LOCAL
