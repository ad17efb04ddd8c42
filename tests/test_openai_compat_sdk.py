"""The drop-in is the openai SDK: the same calls on the real SDK (pointed at the fake provider)
and on the drop-in send the same request, give the same answer and raise the same exceptions."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from creative_services import DictRegistry, InMemoryUsageTracker, LLMEntry
from creative_services.exceptions import (
    ContextWindowExceededError,
    LLMTimeoutError,
    MalformedResponseError,
    RateLimitError,
)
from creative_services.openai_compat import AsyncOpenAI, OpenAI
from creative_services.testing.fake_provider import FakeProvider

HI = [{"role": "user", "content": "hi"}]


def _registry(fake: FakeProvider, model: str = "gpt-4.1-mini") -> DictRegistry:
    return DictRegistry(
        [LLMEntry(name="main", provider="openai", model_name=model, tier="standard",
                  api_key="k", api_endpoint=fake.base_url)]
    )  # fmt: skip


@pytest.fixture
def tracker() -> InMemoryUsageTracker:
    return InMemoryUsageTracker()


@pytest.fixture
def drop_in(fake_provider: FakeProvider, tracker: InMemoryUsageTracker) -> OpenAI:
    return OpenAI(_registry(fake_provider), tracker=tracker)


@pytest.fixture
def sdk(fake_provider: FakeProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="k", base_url=fake_provider.base_url, max_retries=0) as client:
        yield client


def _same(fake: FakeProvider, sdk: openai.OpenAI, drop_in: OpenAI, call: Callable[[Any], Any]):
    """Run ``call`` on both clients (one scripted reply each): both answers and bodies sent."""
    answers, bodies = [], []
    for client in (sdk, drop_in):
        fake.clear()
        fake.reply("same answer", prompt_tokens=7, completion_tokens=3)
        answers.append(call(client))
        bodies.append(fake.requests[-1].body)
    return answers, bodies


def test_drop_in_is_an_openai_client(drop_in):
    assert isinstance(drop_in, openai.OpenAI)
    assert isinstance(AsyncOpenAI(drop_in.llm_client.registry), openai.AsyncOpenAI)


def test_nothing_is_added_to_what_the_caller_sent(fake_provider, sdk, drop_in):
    def call(client: Any) -> Any:
        return client.chat.completions.create(model="gpt-4.1-mini", messages=HI)

    answers, bodies = _same(fake_provider, sdk, drop_in, call)
    assert bodies[0] == bodies[1] == {"model": "gpt-4.1-mini", "messages": HI}
    assert answers[0].choices[0].message == answers[1].choices[0].message


def test_every_parameter_sent_is_forwarded_and_not_given_is_left_out(fake_provider, sdk, drop_in):
    def call(client: Any) -> Any:
        return client.chat.completions.create(
            model="gpt-4.1-mini", messages=HI, user="u-1", metadata={"team": "a"}, seed=3,
            temperature=openai.NOT_GIVEN, max_completion_tokens=50, top_p=openai.omit,
            extra_body={"custom_flag": True},
        )  # fmt: skip

    _, bodies = _same(fake_provider, sdk, drop_in, call)
    assert bodies[1] == bodies[0]
    assert bodies[0]["metadata"] == {"team": "a"}
    assert "temperature" not in bodies[0]


def test_message_objects_from_an_answer_go_back_in(fake_provider, sdk, drop_in, tracker):
    def call(client: Any) -> Any:
        first = client.chat.completions.create(model="gpt-4.1-mini", messages=HI)
        messages: list[Any] = [*HI, first.choices[0].message, {"role": "user", "content": "more"}]
        fake_provider.reply("again")
        return client.chat.completions.create(model="gpt-4.1-mini", messages=messages)

    answers, bodies = _same(fake_provider, sdk, drop_in, call)
    assert bodies[0] == bodies[1]
    assert bodies[1]["messages"][1]["content"] == "same answer"
    assert answers[1].choices[0].message.content == "again"
    assert [r.outcome for r in tracker.records] == ["success", "success"]


def test_user_and_metadata_also_reach_the_usage_record(fake_provider, drop_in, tracker):
    drop_in.chat.completions.create(
        model="standard", messages=HI, user="u-7", metadata={"team": "a"}
    )
    [record] = tracker.records
    assert (record.user_id, dict(record.metadata)) == ("u-7", {"team": "a"})


PROVIDER_ANSWER = {
    "id": "chatcmpl-provider-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4.1-mini",
    "system_fingerprint": "fp_abc",
    "service_tier": "default",
    "choices": [
        {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
         "logprobs": {"content": [{"token": text, "logprob": -0.5, "bytes": None,
                                   "top_logprobs": []}]}}
        for i, text in enumerate(["one", "two"])
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
              "completion_tokens_details": {"reasoning_tokens": 0}},
}  # fmt: skip


def test_answers_keep_the_providers_fields_every_choice_and_request_id(fake_provider, sdk, drop_in):
    answers = []
    for client in (sdk, drop_in):
        fake_provider.fail(200, body=PROVIDER_ANSWER, headers={"x-request-id": "req_42"})
        answers.append(
            client.chat.completions.with_raw_response.create(
                model="gpt-4.1-mini", messages=HI, n=2, logprobs=True
            )
        )
    assert fake_provider.requests[-1].body["n"] == 2
    want, got = (raw.parse() for raw in answers)
    for name in ("id", "created", "system_fingerprint", "service_tier", "model"):
        assert getattr(got, name) == getattr(want, name), name
    assert [c.message.content for c in got.choices] == ["one", "two"]
    assert got.choices[1].logprobs == want.choices[1].logprobs
    assert got.usage.total_tokens == 7
    assert answers[1].headers["x-request-id"] == "req_42"
    assert got._request_id == "req_42"


def test_fine_tuned_model_ids_reach_the_openai_entry(fake_provider, drop_in):
    drop_in.chat.completions.create(model="ft:gpt-4o-mini:acme::abc123", messages=HI)
    assert fake_provider.requests[-1].body["model"] == "ft:gpt-4o-mini:acme::abc123"


# --- errors are the SDK's own classes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "sdk_error"),
    [
        (429, None, openai.RateLimitError),
        (400, "context_length_exceeded", openai.BadRequestError),
        (401, "invalid_api_key", openai.AuthenticationError),
        (404, "model_not_found", openai.NotFoundError),
        (500, None, openai.InternalServerError),
    ],
)
def test_provider_errors_raise_the_sdks_classes(
    fake_provider, sdk, drop_in, status, code, sdk_error
):
    caught = []
    for client in (sdk, drop_in.with_options(max_retries=0)):
        fake_provider.fail(status, "scripted", code=code, headers={"retry-after": "0"})
        with pytest.raises(sdk_error) as info:
            client.chat.completions.create(model="gpt-4.1-mini", messages=HI)
        caught.append(info.value)
    assert caught[1].status_code == caught[0].status_code == status
    if code is not None:
        assert caught[1].code == caught[0].code == code
    assert isinstance(caught[1], openai.APIError)


def test_our_error_is_reachable_from_the_sdks(fake_provider, drop_in):
    fake_provider.fail(429, "slow down", headers={"retry-after": "0"}, times=3)
    with pytest.raises(openai.RateLimitError) as info:
        drop_in.chat.completions.create(model="standard", messages=HI)
    assert isinstance(info.value.creative_services_error, RateLimitError)
    fake_provider.fail(400, "too long", code="context_length_exceeded")
    with pytest.raises(openai.BadRequestError) as bad:
        drop_in.chat.completions.create(model="standard", messages=HI)
    assert bad.value.code == "context_length_exceeded"
    assert isinstance(bad.value.creative_services_error, ContextWindowExceededError)


def test_a_malformed_upstream_answer_is_a_502_bad_gateway(fake_provider, drop_in):
    fake_provider.fail(200, body=b"<html>502 Bad Gateway</html>", times=5)
    with pytest.raises(openai.InternalServerError) as info:
        drop_in.chat.completions.create(model="standard", messages=HI)
    assert (info.value.status_code, info.value.code) == (502, "malformed_response")
    assert isinstance(info.value.creative_services_error, MalformedResponseError)
    assert len(fake_provider.requests) == 2  # retried once, not three times


def test_unknown_model_is_the_sdks_not_found_before_any_call(fake_provider, drop_in, tracker):
    with pytest.raises(openai.NotFoundError, match="no active registry entry"):
        drop_in.chat.completions.create(model="claude-x-unknown", messages=HI)
    assert fake_provider.requests == []


def test_connection_refused_is_the_sdks_connection_error(tracker):
    with FakeProvider() as gone:
        registry = _registry(gone)
    client = OpenAI(registry, tracker=tracker, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="standard", messages=HI)
    assert [r.outcome for r in tracker.records] == ["error"]


# --- constructor options ----------------------------------------------------------------------


def test_max_retries_is_our_retry_policy_and_the_sdk_does_not_retry(fake_provider, tracker):
    for retries, attempts in ((0, 1), (1, 2)):
        fake_provider.clear()
        fake_provider.fail(503, "busy", headers={"retry-after": "0"}, times=5)
        client = OpenAI(_registry(fake_provider), tracker=tracker, max_retries=retries)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="standard", messages=HI)
        assert len(fake_provider.requests) == attempts
    fake_provider.clear()
    fake_provider.fail(503, "busy", headers={"retry-after": "0"}, times=5)
    with pytest.raises(openai.InternalServerError):
        client.with_options(max_retries=0).chat.completions.create(model="standard", messages=HI)
    assert len(fake_provider.requests) == 1


def test_timeout_is_our_deadline(fake_provider, tracker):
    fake_provider.hang(30)
    client = OpenAI(_registry(fake_provider), tracker=tracker, timeout=1.0, max_retries=0)
    with pytest.raises(openai.APITimeoutError) as info:
        client.chat.completions.create(model="standard", messages=HI)
    assert isinstance(info.value.__cause__.__cause__, LLMTimeoutError)
    [record] = tracker.records
    assert record.error_class == "LLMTimeoutError"


def test_api_key_and_base_url_serve_models_the_registry_does_not(fake_provider, tracker):
    with FakeProvider() as own:
        client = OpenAI(
            _registry(fake_provider), tracker=tracker, api_key="sk-own-key", base_url=own.base_url
        )
        assert str(client.base_url).startswith(own.base_url)
        client.chat.completions.create(model="my-own-model", messages=HI)
        client.chat.completions.create(model="standard", messages=HI)
        assert own.requests[0].body["model"] == "my-own-model"
        assert own.requests[0].headers["authorization"] == "Bearer sk-own-key"
        assert len(own.requests) == 1  # registry models still go through the registry
    assert fake_provider.requests[0].headers["authorization"] == "Bearer k"


def test_default_headers_reach_the_provider(fake_provider, tracker):
    client = OpenAI(_registry(fake_provider), tracker=tracker, default_headers={"X-Team": "a"})
    client.chat.completions.create(model="standard", messages=HI, extra_headers={"X-Call": "1"})
    headers = fake_provider.requests[0].headers
    assert (headers["x-team"], headers["x-call"]) == ("a", "1")


def test_starts_without_openai_api_key(fake_provider, tracker, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = OpenAI(_registry(fake_provider), tracker=tracker)
    assert client.chat.completions.create(model="standard", messages=HI).choices
    assert "OPENAI_API_KEY" not in os.environ


def test_context_managers(fake_provider, tracker):
    with OpenAI(_registry(fake_provider), tracker=tracker) as client:
        assert client.chat.completions.create(model="standard", messages=HI).choices


# --- SDK helpers, streams, other endpoints ------------------------------------------------------


class Haiku(BaseModel):
    title: str
    lines: list[str]


def test_parse_helpers_work_as_on_the_sdk(fake_provider, sdk, drop_in):
    answer = '{"title": "Tests", "lines": ["a", "b", "c"]}'
    parsed = []
    for client in (sdk, drop_in):
        fake_provider.reply(answer)
        completion = client.chat.completions.parse(
            model="gpt-4.1-mini", messages=HI, response_format=Haiku
        )
        parsed.append(completion.choices[0].message.parsed)
    assert parsed[0] == parsed[1] == Haiku(title="Tests", lines=["a", "b", "c"])
    assert fake_provider.requests[-1].body["response_format"]["type"] == "json_schema"


def test_stream_helper_and_raw_stream(fake_provider, sdk, drop_in, tracker):
    texts = []
    for client in (sdk, drop_in):
        fake_provider.stream(["Hel", "lo"])
        with client.chat.completions.stream(model="gpt-4.1-mini", messages=HI) as stream:
            texts.append(stream.get_final_completion().choices[0].message.content)
    assert texts == ["Hello", "Hello"]
    fake_provider.stream(["a", "b"])
    chunks = list(
        drop_in.chat.completions.create(
            model="standard", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ab"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 15
    assert [r.outcome for r in tracker.records] == ["success", "success"]


def test_models_list_names_tiers_and_entries(drop_in):
    ids = [model.id for model in drop_in.models.list()]
    assert {"economy", "standard", "premium", "main", "gpt-4.1-mini"} <= set(ids)


def test_endpoints_not_served_raise_not_found_saying_so(fake_provider, drop_in):
    with pytest.raises(openai.NotFoundError, match="not served"):
        drop_in.files.list()
    with pytest.raises(openai.NotFoundError, match="stream=True is not served"):
        drop_in.responses.create(model="standard", input="hi", stream=True)
    with pytest.raises(openai.NotFoundError, match="not served"):
        drop_in.responses.retrieve("resp_1")
    assert fake_provider.requests == []


# --- embeddings and the Responses API ----------------------------------------------------------


def test_embeddings_answer_as_the_sdk_does_with_a_usage_record(
    fake_provider, sdk, drop_in, tracker
):
    def call(client: Any) -> Any:
        return client.embeddings.create(model="text-embedding-3-small", input=["hi", "there"])

    answers, bodies = _same(fake_provider, sdk, drop_in, call)
    want, got = answers
    assert [d.embedding for d in got.data] == [d.embedding for d in want.data]
    assert (got.model, got.usage.prompt_tokens) == (want.model, 7)
    assert bodies[1]["input"] == ["hi", "there"]
    # The SDK asks for base64; LiteLLM is asked for floats, encoded back for the SDK.
    assert (bodies[0]["encoding_format"], bodies[1]["encoding_format"]) == ("base64", "float")
    [record] = tracker.records
    assert (record.model, record.outcome, record.prompt_tokens) == (
        "text-embedding-3-small",
        "success",
        7,
    )
    assert record.cost is not None
    assert record.cost > 0


def test_embeddings_model_may_name_an_entry(fake_provider, tracker):
    entry = LLMEntry(name="embedder", provider="openai", model_name="text-embedding-3-large",
                     tier="economy", api_key="k", api_endpoint=fake_provider.base_url)  # fmt: skip
    client = OpenAI(DictRegistry([entry]), tracker=tracker)
    reply = client.embeddings.create(model="embedder", input="hi", encoding_format="float")
    assert fake_provider.requests[-1].body["model"] == "text-embedding-3-large"
    assert len(reply.data[0].embedding) == 3
    assert tracker.records[-1].entry_name == "embedder"


def test_embedding_errors_are_the_sdks_and_leave_a_failed_record(fake_provider, tracker):
    client = OpenAI(_registry(fake_provider), tracker=tracker, max_retries=0)
    fake_provider.fail(429, "slow down", headers={"retry-after": "0"}, times=3)
    with pytest.raises(openai.RateLimitError) as info:
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert isinstance(info.value.creative_services_error, RateLimitError)
    assert len(fake_provider.requests) == 1  # max_retries=0: neither we nor LiteLLM retried
    [record] = tracker.records
    assert (record.outcome, record.error_class) == ("error", "RateLimitError")


def test_responses_create_answers_as_the_sdk_does(fake_provider, sdk, drop_in, tracker):
    def call(client: Any) -> Any:
        return client.responses.create(
            model="gpt-4.1-mini", input="hi", user="u-3", metadata={"team": "b"}
        )

    answers, bodies = _same(fake_provider, sdk, drop_in, call)
    want, got = answers
    assert (got.output_text, got.id) == (want.output_text, want.id) == ("same answer", "resp_fake")
    assert (got.usage.input_tokens, got.usage.output_tokens) == (7, 3)
    assert bodies[1] == bodies[0]
    [record] = tracker.records
    assert (record.entry_name, record.user_id, record.completion_tokens) == ("main", "u-3", 3)
    assert record.metadata["team"] == "b"


async def test_async_embeddings_and_responses(fake_provider, tracker):
    async with AsyncOpenAI(_registry(fake_provider), tracker=tracker) as client:
        vectors = await client.embeddings.create(model="text-embedding-3-small", input="hi")
        reply = await client.responses.create(model="standard", input="hi")
    assert len(vectors.data[0].embedding) == 3
    assert reply.output_text == "fake answer"
    assert [r.outcome for r in tracker.records] == ["success", "success"]


# --- extra_query --------------------------------------------------------------------------------


def test_extra_query_reaches_the_provider(fake_provider, sdk, drop_in):
    def call(client: Any) -> Any:
        return client.chat.completions.create(
            model="gpt-4.1-mini", messages=HI, extra_query={"api-version": "2025-01-01"}
        )

    _, bodies = _same(fake_provider, sdk, drop_in, call)
    assert fake_provider.requests[-1].query == "api-version=2025-01-01"
    assert bodies[1] == bodies[0]
    fake_provider.stream(["a"])
    stream = drop_in.chat.completions.create(
        model="gpt-4.1-mini", messages=HI, stream=True, extra_query={"tag": "s"}
    )
    list(stream)
    assert fake_provider.requests[-1].query == "tag=s"
    drop_in.embeddings.create(model="text-embedding-3-small", input="x", extra_query={"e": "1"})
    assert fake_provider.requests[-1].query == "e=1"


def test_extra_query_where_it_cannot_go_is_a_bad_request_before_any_call(fake_provider, tracker):
    entry = LLMEntry(name="claude", provider="anthropic", model_name="claude-haiku-4-5",
                     tier="standard", api_key="k", api_endpoint=fake_provider.base_url)  # fmt: skip
    client = OpenAI(DictRegistry([entry]), tracker=tracker)
    with pytest.raises(openai.BadRequestError, match="extra_query"):
        client.chat.completions.create(model="claude", messages=HI, extra_query={"a": "1"})
    assert fake_provider.requests == []


async def test_async_client_answers_streams_and_raises_sdk_errors(fake_provider, tracker):
    async with AsyncOpenAI(_registry(fake_provider), tracker=tracker, max_retries=0) as client:
        reply = await client.chat.completions.create(model="standard", messages=HI)
        assert reply.choices[0].message.content == "fake answer"
        fake_provider.stream(["x", "y"])
        stream = await client.chat.completions.create(model="standard", messages=HI, stream=True)
        deltas = [c.choices[0].delta async for c in stream if c.choices]
        # OpenAI's first frame carries the role and empty content; the text follows it.
        assert (deltas[0].role, deltas[0].content) == ("assistant", "")
        assert [d.content for d in deltas[1:]] == ["x", "y", None]
        fake_provider.fail(429, "slow", headers={"retry-after": "0"})
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="standard", messages=HI)
        page = await client.models.list()
        assert "standard" in [m.id for m in page.data]
    assert [r.outcome for r in tracker.records] == ["success", "success", "error"]


def test_a_budget_refusal_is_a_429_budget_exceeded_before_any_call(fake_provider, tracker):
    from creative_services import DynamicLLMClient
    from creative_services.budgets import BudgetLimit, InMemoryBudget

    entry = LLMEntry(name="main", provider="openai", model_name="gpt-4.1-mini", tier="standard",
                     api_key="k", api_endpoint=fake_provider.base_url, cost_per_1k_input="1",
                     cost_per_1k_output="1")  # fmt: skip
    budget = InMemoryBudget([BudgetLimit("global", "day", "0.000001")])
    core = DynamicLLMClient(DictRegistry([entry]), tracker=tracker, budget=budget)
    with pytest.raises(openai.RateLimitError) as info:
        OpenAI(client=core).chat.completions.create(model="standard", messages=HI)
    assert info.value.code == "budget_exceeded"
    assert fake_provider.requests == []


def test_a_budget_refusal_of_an_embedding_is_a_429_before_any_call(fake_provider, tracker):
    from creative_services import DynamicLLMClient
    from creative_services.budgets import BudgetLimit, InMemoryBudget

    entry = LLMEntry(name="embedder", provider="openai", model_name="text-embedding-3-small",
                     tier="economy", api_key="k", api_endpoint=fake_provider.base_url,
                     cost_per_1k_input="1", cost_per_1k_output="1")  # fmt: skip
    budget = InMemoryBudget([BudgetLimit("global", "day", "0.000001")])
    core = DynamicLLMClient(DictRegistry([entry]), tracker=tracker, budget=budget)
    with pytest.raises(openai.RateLimitError) as info:
        OpenAI(client=core).embeddings.create(model="embedder", input="hi " * 100)
    assert info.value.code == "budget_exceeded"
    assert fake_provider.requests == []
    assert [r.error_class for r in tracker.records] == ["BudgetExceededError"]
