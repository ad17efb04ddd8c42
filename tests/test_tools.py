"""Tool calls: tools/tool_choice checked before any call and passed through; tool calls come back
in one shape from every provider (OpenAI, Anthropic and streamed ones: tests/test_recordings.py,
tests/test_streaming.py; Gemini here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    InvalidRequestError,
    LLMEntry,
)
from creative_services.testing.cassettes import use_cassette
from creative_services.testing.fake_provider import FakeProvider

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
SYNTHETIC = Path(__file__).resolve().parent.parent / "cassettes" / "synthetic"


def _client(entry: LLMEntry) -> DynamicLLMClient:
    return DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())


def _fake_entry(fake: FakeProvider) -> LLMEntry:
    return LLMEntry(
        name="fake",
        provider="openai",
        model_name="gpt-4o-mini",
        tier="standard",
        api_key="test-key",
        api_endpoint=fake.base_url,
    )


@pytest.mark.parametrize(
    ("tools", "tool_choice", "message"),
    [
        ([], None, "non-empty list"),
        ("get_weather", None, "non-empty list"),
        ([{"name": "get_weather"}], None, r"tools\[0\] must be"),
        ([{"type": "function", "function": {"name": "get weather"}}], None, "letters, digits"),
        (
            [{"type": "function", "function": {"name": "f", "parameters": "{}"}}],
            None,
            "JSON schema object",
        ),
        (None, "auto", "tool_choice needs tools"),
        ([WEATHER], "always", "tool_choice must be one of"),
        ([WEATHER], {"type": "function", "function": {"name": "other"}}, "get_weather"),
    ],
)
async def test_bad_tools_fail_before_any_request(
    fake_provider: FakeProvider, tools: Any, tool_choice: Any, message: str
) -> None:
    client = _client(_fake_entry(fake_provider))
    params: dict[str, Any] = {"tools": tools} if tools is not None else {}
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    with pytest.raises(InvalidRequestError, match=message):
        await client.generate(prompt="weather?", **params)
    assert fake_provider.requests == []


async def test_tools_and_a_tool_turn_reach_the_provider(fake_provider: FakeProvider) -> None:
    client = _client(_fake_entry(fake_provider))
    choice = {"type": "function", "function": {"name": "get_weather"}}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    response = await client.generate(messages=messages, tools=[WEATHER], tool_choice=choice)

    assert response.content == "fake answer"
    body = fake_provider.requests[0].body
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == choice
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
    assert body["messages"][1]["tool_calls"][0]["id"] == "call_1"


async def test_gemini_function_calls_come_back_in_the_common_shape() -> None:
    # Synthetic cassette (cassettes/synthetic/README.md): Gemini's documented functionCall parts.
    entry = LLMEntry(
        name="gemini", provider="gemini", model_name="gemini-2.5-flash", tier="standard",
        api_key="test-key",
    )  # fmt: skip
    client = _client(entry)
    with use_cassette(SYNTHETIC / "gemini-function-call.yaml", match_on=["method", "path"]):
        response = await client.generate(prompt="Weather and time in Paris?", tools=[WEATHER])

    calls = [(c["name"], json.loads(c["arguments"])) for c in response.tool_calls]
    assert calls == [
        ("get_weather", {"location": "Paris", "unit": "celsius"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]
    assert all(isinstance(c["id"], str) and c["id"] for c in response.tool_calls)
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (61, 24)
