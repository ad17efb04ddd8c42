"""FakeProvider speaks the OpenAI and Anthropic wire formats, plain and streamed, as scripted."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, LLMEntry
from creative_services.exceptions import LLMError
from creative_services.testing.fake_provider import FakeProvider

OPENAI = "/chat/completions"
ANTHROPIC = "/messages"


def _post(fake: FakeProvider, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(fake.base_url + path, json=body, timeout=5)


def _sse_data(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def _client(entry: LLMEntry) -> DynamicLLMClient:
    return DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())


def _entry(fake: FakeProvider, provider: str = "openai") -> LLMEntry:
    model = "claude-3-5-haiku-20241022" if provider == "anthropic" else "gpt-4o-mini"
    return LLMEntry(
        name="fake",
        provider=provider,
        model_name=model,
        tier="standard",
        api_endpoint=fake.base_url,
        api_key="sk-test-fake",
    )


def test_openai_stream_sends_chunks_then_usage_then_done(fake_provider: FakeProvider) -> None:
    fake_provider.stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    response = _post(fake_provider, OPENAI, body)
    assert response.headers["content-type"] == "text/event-stream"
    data = _sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_openai_stream_has_no_usage_chunk_unless_asked(fake_provider: FakeProvider) -> None:
    fake_provider.stream(["a"])
    fake_provider.stream(["a"], usage=False)
    plain = _sse_data(_post(fake_provider, OPENAI, {"stream": True}))
    unpriced = _sse_data(
        _post(fake_provider, OPENAI, {"stream": True, "stream_options": {"include_usage": True}})
    )
    for data in (plain, unpriced):
        assert not any("usage" in json.loads(item) for item in data[:-1])


def test_streaming_request_gets_default_answer_streamed(fake_provider: FakeProvider) -> None:
    data = _sse_data(_post(fake_provider, OPENAI, {"stream": True}))
    text = "".join(
        json.loads(item)["choices"][0]["delta"].get("content") or "" for item in data[:-1]
    )
    assert text == "fake answer"


def test_reply_is_streamed_to_a_streaming_request(fake_provider: FakeProvider) -> None:
    fake_provider.reply("whole", usage_extra={"cost": 0.5})
    body = {"stream": True, "stream_options": {"include_usage": True}}
    chunks = [json.loads(item) for item in _sse_data(_post(fake_provider, OPENAI, body))[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:2]] == ["", "whole"]
    assert chunks[-1]["usage"]["cost"] == 0.5


def test_stream_answers_a_plain_request_with_the_joined_text(fake_provider: FakeProvider) -> None:
    fake_provider.stream(["Hel", "lo"], prompt_tokens=3, completion_tokens=1)
    body = _post(fake_provider, OPENAI, {"model": "m"}).json()
    assert body["choices"][0]["message"]["content"] == "Hello"
    assert body["usage"]["total_tokens"] == 4


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
def test_stream_fail_after_drops_the_connection_midway(
    fake_provider: FakeProvider, path: str
) -> None:
    fake_provider.stream(["one", "two", "three"], fail_after=1)
    received = b""
    url = fake_provider.base_url + path
    with (  # noqa: PT012
        pytest.raises(httpx.RemoteProtocolError),
        httpx.Client(timeout=5) as http,
        http.stream("POST", url, json={"stream": True}) as resp,
    ):
        for part in resp.iter_raw():
            received += part
    assert b"one" in received
    assert b"two" not in received


def test_anthropic_plain_message(fake_provider: FakeProvider) -> None:
    fake_provider.reply("bonjour", prompt_tokens=7, completion_tokens=2)
    body = _post(fake_provider, ANTHROPIC, {"model": "claude"}).json()
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "bonjour"}]
    assert body["usage"] == {"input_tokens": 7, "output_tokens": 2}


def test_anthropic_stream_events(fake_provider: FakeProvider) -> None:
    fake_provider.stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)
    events = _events(_post(fake_provider, ANTHROPIC, {"stream": True}))
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    deltas = [data["delta"]["text"] for name, data in events if name == "content_block_delta"]
    assert deltas == ["Hel", "lo"]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 5
    assert events[-2][1]["usage"]["output_tokens"] == 2


def test_fail_renders_the_error_in_the_requests_format(fake_provider: FakeProvider) -> None:
    fake_provider.fail(429, "slow down", headers={"retry-after": "3"}, times=2)
    openai = _post(fake_provider, OPENAI, {})
    anthropic = _post(fake_provider, ANTHROPIC, {})
    assert (openai.status_code, anthropic.status_code) == (429, 429)
    assert anthropic.headers["retry-after"] == "3"
    assert openai.json()["error"]["message"] == "slow down"
    assert anthropic.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


def test_requests_are_recorded_with_query(fake_provider: FakeProvider) -> None:
    httpx.post(fake_provider.base_url + OPENAI + "?key=abc", json={"a": 1}, timeout=5)
    assert fake_provider.requests[0].query == "key=abc"
    assert fake_provider.requests[0].body == {"a": 1}
    assert fake_provider.pending == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_client_stream_through_litellm(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)
    client = _client(_entry(fake_provider, provider))
    stream = client.stream("hi")
    texts = [text async for text in stream]
    assert "".join(texts) == "Hello"
    usage = stream.response.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 2)
    assert fake_provider.requests[0].body["stream"] is True


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_client_generate_through_litellm(fake_provider: FakeProvider, provider: str) -> None:
    fake_provider.reply("plain", prompt_tokens=4, completion_tokens=1)
    response = await _client(_entry(fake_provider, provider)).generate("hi")
    assert response.content == "plain"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 1)


async def test_client_stream_that_breaks_midway_raises(fake_provider: FakeProvider) -> None:
    fake_provider.stream(["Hel", "lo", "!"], fail_after=1)
    client = _client(_entry(fake_provider))
    texts: list[str] = []
    with pytest.raises(LLMError):  # noqa: PT012
        async for text in client.stream("hi"):
            texts.append(text)
    assert "".join(texts) == "Hel"
