"""Issue 14 item 1: per-call provider parameters are an allow-list. Nothing a caller passes per
call (``generate(**params)``, a drop-in body, a gateway body) may send the registry's key to
another host, change the route or the price, or answer without the provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from openai.types.embedding_create_params import EmbeddingCreateParams
from openai.types.responses.response_create_params import ResponseCreateParamsBase

from creative_services import DictRegistry, DynamicLLMClient, InvalidRequestError
from creative_services._request import CHAT_PARAMS, EMBEDDING_PARAMS, RESPONSES_PARAMS
from creative_services.openai_compat import OpenAI
from creative_services.testing.fake_provider import FakeProvider

from ._helpers import entry

# Each one, passed per call on LiteLLM 1.110.2, sends the call (and the entry's key) elsewhere,
# answers without any provider call, changes the price booked or the retry layer.
ROUTING = [
    "base_url", "api_base", "api_key", "custom_llm_provider", "mock_response",
    "mock_tool_calls", "api_version", "client", "organization", "ssl_verify", "num_retries",
    "max_retries", "fallbacks", "input_cost_per_token", "output_cost_per_token",
    "litellm_logging_obj", "aws_access_key_id", "vertex_project", "azure_ad_token", "headers",
    "model",
]  # fmt: skip


@pytest.fixture
def other_host() -> Iterator[FakeProvider]:
    """Where an attacker would send the call: it must receive nothing."""
    with FakeProvider() as fake:
        yield fake


def _client(fake: FakeProvider, **kw: Any) -> DynamicLLMClient:
    return DynamicLLMClient(DictRegistry([entry(fake, **kw)]))


@pytest.mark.parametrize("name", ROUTING)
def test_destination_credentials_and_mocks_are_refused_before_any_call(
    name: str, fake_provider: FakeProvider, other_host: FakeProvider
) -> None:
    value = other_host.base_url if name in ("base_url", "api_base") else "x"
    with pytest.raises(InvalidRequestError) as caught:
        _client(fake_provider).generate_sync(prompt="hi", **{name: value})
    assert caught.value.param == name
    assert repr(name) in str(caught.value)
    assert fake_provider.requests == []
    assert other_host.requests == []


def test_base_url_never_carries_the_key_elsewhere(
    fake_provider: FakeProvider, other_host: FakeProvider
) -> None:
    with pytest.raises(InvalidRequestError, match="chosen by the registry"):
        _client(fake_provider).generate_sync(prompt="hi", base_url=other_host.base_url)
    assert other_host.requests == []


def test_generation_parameters_reach_the_provider(fake_provider: FakeProvider) -> None:
    fake_provider.reply("ok")
    _client(fake_provider).generate_sync(
        prompt="hi", seed=7, top_p=0.5, stop=["\n"], user="u1", logprobs=True,
        extra_body={"custom_field": 1},
    )  # fmt: skip
    body = fake_provider.requests[-1].body
    assert (body["seed"], body["top_p"], body["stop"], body["user"]) == (7, 0.5, ["\n"], "u1")
    assert body["logprobs"] is True
    assert body["custom_field"] == 1


def test_an_unknown_parameter_names_the_fix(fake_provider: FakeProvider) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        _client(fake_provider).generate_sync(prompt="hi", num_ctx=4096)
    assert caught.value.param == "num_ctx"
    assert "extra_body" in str(caught.value)
    assert "extra_params" in str(caught.value)
    assert fake_provider.requests == []


def test_an_entrys_extra_params_allow_more(fake_provider: FakeProvider) -> None:
    fake_provider.reply("ok")
    client = _client(fake_provider, extra_params={"num_ctx": 2048})
    client.generate_sync(prompt="hi", num_ctx=4096)
    assert fake_provider.requests[-1].body["num_ctx"] == 4096


def test_extra_params_never_allow_a_routing_parameter(fake_provider: FakeProvider) -> None:
    client = _client(fake_provider, extra_params={"api_base": fake_provider.base_url})
    with pytest.raises(InvalidRequestError) as caught:
        client.generate_sync(prompt="hi", api_base="http://127.0.0.1:9")
    assert caught.value.param == "api_base"


def test_extra_body_must_be_an_object(fake_provider: FakeProvider) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        _client(fake_provider).generate_sync(prompt="hi", extra_body="x")
    assert caught.value.param == "extra_body"


# --- the drop-in: an SDK body may carry any field (extra_body lands at the top) -------------


@pytest.fixture
def drop_in(fake_provider: FakeProvider) -> Iterator[OpenAI]:
    with OpenAI(DictRegistry([entry(fake_provider)])) as client:
        yield client


@pytest.mark.parametrize("name", ["api_base", "base_url", "api_key", "mock_response"])
def test_drop_in_refuses_a_routing_field_in_the_body(
    name: str, drop_in: OpenAI, fake_provider: FakeProvider, other_host: FakeProvider
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError, match=name):
        drop_in.chat.completions.create(
            model="standard", messages=hi, extra_body={name: other_host.base_url}
        )
    with pytest.raises(openai.BadRequestError, match=name):
        drop_in.embeddings.create(
            model="standard", input="hi", extra_body={name: other_host.base_url}
        )
    assert fake_provider.requests == []
    assert other_host.requests == []


def test_drop_in_forwards_unknown_fields_as_the_sdk_sends_them(
    drop_in: OpenAI, fake_provider: FakeProvider
) -> None:
    fake_provider.reply("ok")
    hi = [{"role": "user", "content": "hi"}]
    drop_in.chat.completions.create(
        model="standard", messages=hi, extra_body={"num_ctx": 4096, "top_k": 3}
    )
    body = fake_provider.requests[-1].body
    assert body["num_ctx"] == 4096
    assert body["top_k"] == 3


@pytest.mark.parametrize(
    ("ours", "sdk", "own"),
    [
        (CHAT_PARAMS, CompletionCreateParamsBase, {"model", "messages", "stream_options"}),
        (EMBEDDING_PARAMS, EmbeddingCreateParams, {"model"}),
        (RESPONSES_PARAMS, ResponseCreateParamsBase, {"model", "stream_options"}),
    ],
)
def test_allow_lists_cover_every_field_of_the_installed_sdk(
    ours: frozenset[str], sdk: Any, own: set[str]
) -> None:
    fields = set(sdk.__annotations__)
    assert fields - own - ours == set()
