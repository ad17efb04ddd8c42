"""Libraries that take an openai client run their normal entry points on a drop-in client:
instructor, LangChain's ChatOpenAI, openai-agents and pydantic-ai, each served through the
registry with a usage record per call."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from creative_services import DictRegistry, InMemoryUsageTracker, LLMEntry
from creative_services.openai_compat import AsyncOpenAI, OpenAI
from creative_services.testing.fake_provider import FakeProvider


class City(BaseModel):
    name: str
    population: int


def _registry(fake: FakeProvider) -> DictRegistry:
    return DictRegistry(
        [LLMEntry(name="main", provider="openai", model_name="gpt-4.1-mini", tier="standard",
                  api_key="k", api_endpoint=fake.base_url)]
    )  # fmt: skip


def _tool_answer(name: str, arguments: dict[str, object]) -> dict[str, object]:
    call = {"id": "call_1", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
        "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12},
    }  # fmt: skip


@pytest.fixture
def tracker() -> InMemoryUsageTracker:
    return InMemoryUsageTracker()


def test_instructor_from_openai_extracts_a_model(fake_provider, tracker):
    import instructor

    client = instructor.from_openai(OpenAI(_registry(fake_provider), tracker=tracker))
    fake_provider.fail(200, body=_tool_answer("City", {"name": "Paris", "population": 2100000}))
    city = client.chat.completions.create(
        model="standard",
        response_model=City,
        messages=[{"role": "user", "content": "Paris?"}],
        max_retries=0,
    )
    assert (city.name, city.population) == ("Paris", 2100000)
    assert fake_provider.requests[0].body["tools"][0]["function"]["name"] == "City"
    assert [r.outcome for r in tracker.records] == ["success"]


def test_langchain_chat_openai_invoke_and_stream(fake_provider, tracker):
    from langchain_openai import ChatOpenAI

    sync_client = OpenAI(_registry(fake_provider), tracker=tracker)
    async_client = AsyncOpenAI(_registry(fake_provider), tracker=tracker)
    chat = ChatOpenAI(
        model="standard",
        client=sync_client.chat.completions,
        async_client=async_client.chat.completions,
        root_client=sync_client,
        root_async_client=async_client,
    )
    fake_provider.reply("Bonjour", prompt_tokens=3, completion_tokens=1)
    message = chat.invoke("Say hello in French")
    assert message.content == "Bonjour"
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 4
    fake_provider.stream(["Bon", "jour"])
    assert "".join(str(chunk.content) for chunk in chat.stream("again")) == "Bonjour"
    assert [r.outcome for r in tracker.records] == ["success", "success"]


async def test_openai_agents_chat_completions_model_runs_an_agent(fake_provider, tracker):
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled

    set_tracing_disabled(True)  # the SDK would export traces to OpenAI
    model = OpenAIChatCompletionsModel(
        model="standard", openai_client=AsyncOpenAI(_registry(fake_provider), tracker=tracker)
    )
    agent = Agent(name="Assistant", instructions="Be brief.", model=model)
    fake_provider.reply("Four.")
    result = await Runner.run(agent, "2+2?")
    assert result.final_output == "Four."
    assert fake_provider.requests[0].body["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }
    assert [r.outcome for r in tracker.records] == ["success"]


async def test_pydantic_ai_openai_provider_runs_an_agent_with_structured_output(
    fake_provider, tracker
):
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(_registry(fake_provider), tracker=tracker)
    model = OpenAIChatModel("standard", provider=OpenAIProvider(openai_client=client))
    fake_provider.reply("plain answer")
    assert (await Agent(model).run("hi")).output == "plain answer"
    agent = Agent(model, output_type=City)
    fake_provider.fail(
        200, body=_tool_answer("final_result", {"name": "Rome", "population": 2800000})
    )
    result = await agent.run("Rome?")
    assert result.output == City(name="Rome", population=2800000)
    assert [r.outcome for r in tracker.records] == ["success", "success"]
