"""Provider facts: the documented base URL becomes what LiteLLM needs; keys come from env."""

from __future__ import annotations

import pytest

from creative_services import LLMEntry, MissingAPIKeyError
from creative_services._providers import litellm_route, resolve_api_key


@pytest.mark.parametrize(
    ("provider", "model", "endpoint", "expected"),
    [
        ("openai", "gpt-4o", None, ("openai/gpt-4o", None)),
        ("openai", "gpt-4o", "https://api.openai.com/v1/", ("openai/gpt-4o", "https://api.openai.com/v1")),
        ("anthropic", "claude", "https://api.anthropic.com", ("anthropic/claude", "https://api.anthropic.com")),
        ("anthropic", "claude", "https://api.anthropic.com/v1", ("anthropic/claude", "https://api.anthropic.com")),
        ("groq", "llama", None, ("openai/llama", "https://api.groq.com/openai/v1")),
        ("groq", "llama", "https://api.groq.com", ("openai/llama", "https://api.groq.com/openai/v1")),
        ("mistral", "small", "https://api.mistral.ai/v1", ("mistral/small", "https://api.mistral.ai/v1")),
        ("gemini", "gemini-2.5-flash", "https://generativelanguage.googleapis.com",
         ("gemini/gemini-2.5-flash", "https://generativelanguage.googleapis.com/v1beta")),
        ("google", "g", "https://gw.example/v1", ("gemini/g", "https://gw.example/v1")),
        ("cohere", "command-a", "https://api.cohere.com", ("cohere_chat/command-a", "https://api.cohere.com/v2/chat")),
        ("cohere", "command-a", "https://api.cohere.com/v2", ("cohere_chat/command-a", "https://api.cohere.com/v2/chat")),
        ("openrouter", "openai/gpt-4o", "https://openrouter.ai/api/v1",
         ("openrouter/openai/gpt-4o", "https://openrouter.ai/api/v1")),
        ("ollama", "llama3", "http://localhost:11434", ("ollama_chat/llama3", "http://localhost:11434")),
        ("ollama", "llama3", "localhost:11434/api", ("ollama_chat/llama3", "http://localhost:11434")),
        ("deepseek", "deepseek-chat", None, ("deepseek/deepseek-chat", None)),
        ("azure", "my-deployment", "https://r.openai.azure.com", ("azure/my-deployment", "https://r.openai.azure.com")),
        ("openai_compatible", "qwen", "http://127.0.0.1:8000/v1", ("openai/qwen", "http://127.0.0.1:8000/v1")),
        ("together_ai", "meta/llama", None, ("together_ai/meta/llama", None)),
    ],
)  # fmt: skip
def test_litellm_route(provider, model, endpoint, expected):
    assert litellm_route(provider, model, endpoint) == expected


def e(**kw):
    return LLMEntry(name="x", model_name="m", **{"provider": "openai", **kw})


def test_key_order_entry_then_named_env_then_provider_env():
    env = {"OPENAI_API_KEY": "from-provider-env", "MINE": "from-named-env"}
    assert resolve_api_key(e(api_key="own"), env) == "own"
    assert resolve_api_key(e(api_key_env="MINE"), env) == "from-named-env"
    assert resolve_api_key(e(), env) == "from-provider-env"
    assert resolve_api_key(e(provider="gemini"), {"GOOGLE_API_KEY": "g"}) == "g"


def test_keyless_providers_need_no_key():
    assert resolve_api_key(e(provider="ollama"), {}) is None
    assert resolve_api_key(e(provider="openai_compatible"), {}) is None


def test_missing_key_names_the_variable():
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        resolve_api_key(e(provider="anthropic"), {})
    with pytest.raises(MissingAPIKeyError, match="MINE"):
        resolve_api_key(e(api_key_env="MINE"), {"OPENAI_API_KEY": "not this one"})
