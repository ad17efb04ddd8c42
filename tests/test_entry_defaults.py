"""Requests as generate() builds them: an entry's max_tokens/temperature defaults are adapted to
what its model accepts, what the caller passes explicitly is sent as it is, and message objects
are accepted as well as dicts."""

from __future__ import annotations

import logging

import pytest

from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, LLMEntry
from creative_services.exceptions import LLMError
from creative_services.testing.fake_provider import FakeProvider


def _client(fake: FakeProvider, model: str) -> DynamicLLMClient:
    entry = LLMEntry(name="x", provider="openai", model_name=model, tier="standard",
                     api_key="k", api_endpoint=fake.base_url)  # fmt: skip
    return DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())


def _sent(fake: FakeProvider) -> dict[str, object]:
    return {k: v for k, v in fake.requests[-1].body.items() if k not in ("messages", "model")}


@pytest.mark.parametrize("model", ["gpt-5-mini", "o3-mini"])
def test_reasoning_model_gets_no_default_temperature_and_max_completion_tokens(
    fake_provider, model, caplog
):
    with caplog.at_level(logging.DEBUG):
        reply = _client(fake_provider, model).generate_sync("hi")
    assert reply.content == "fake answer"
    assert _sent(fake_provider) == {"max_completion_tokens": 4096}
    assert "entry_defaults_adapted" in caplog.text


def test_other_models_keep_the_entry_defaults(fake_provider):
    _client(fake_provider, "gpt-4o-mini").generate_sync("hi")
    assert _sent(fake_provider) == {"temperature": 0.7, "max_tokens": 4096}


def test_explicit_temperature_on_a_reasoning_model_is_not_dropped(fake_provider):
    with pytest.raises(LLMError, match="temperature"):
        _client(fake_provider, "o3-mini").generate_sync("hi", temperature=0.5)


def test_explicit_max_tokens_replaces_the_default_under_its_own_name(fake_provider):
    _client(fake_provider, "gpt-4o-mini").generate_sync("hi", max_completion_tokens=9)
    assert _sent(fake_provider) == {"temperature": 0.7, "max_completion_tokens": 9}


def test_entry_defaults_false_sends_only_what_the_caller_passed(fake_provider):
    _client(fake_provider, "gpt-4o-mini").generate_sync("hi", entry_defaults=False)
    assert _sent(fake_provider) == {}


def test_generate_accepts_the_sdks_message_objects_and_pydantic_models(fake_provider):
    from openai.types.chat import ChatCompletionMessage
    from pydantic import BaseModel

    class Note(BaseModel):
        role: str
        content: str

    earlier = ChatCompletionMessage(role="assistant", content="Paris.")
    messages = [{"role": "user", "content": "Capital?"}, earlier, Note(role="user", content="Why?")]
    _client(fake_provider, "gpt-4o-mini").generate_sync(messages=messages)  # type: ignore[list-item]
    assert fake_provider.requests[-1].body["messages"] == [
        {"role": "user", "content": "Capital?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Why?"},
    ]
