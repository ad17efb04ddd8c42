"""The gateway as its users meet it: a real ``creative-services serve`` on 127.0.0.1, driven by
the openai SDK (sync, async, streams, tools, structured output), curl and LangChain."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from pydantic import BaseModel

from creative_services.testing import FakeProvider

from ._gateway import PROVIDER_KEY, Gateway

HI = [{"role": "user", "content": "say hi"}]
CURL = shutil.which("curl") or "curl"


@pytest.fixture
def gateway(fake_provider: FakeProvider, tmp_path: Path) -> Iterator[Gateway]:
    server = Gateway(tmp_path, fake_provider.base_url)
    yield server
    server.stop()


def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    """An SDK client on the gateway, closed when the test ends."""
    client = openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
    gateway.clients.append(client)
    return client


def usage_rows(gateway: Gateway) -> list[sqlite3.Row]:
    with sqlite3.connect(gateway.folder / "usage.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM usage ORDER BY rowid").fetchall()


def test_sdk_call_books_the_keys_user_and_only_the_gateway_holds_provider_keys(
    gateway: Gateway, fake_provider: FakeProvider
) -> None:
    key = gateway.new_key("alice")
    client = sdk(gateway, key)
    reply = client.chat.completions.create(
        model="standard", messages=HI, user="mallory", extra_headers={"x-trace": "t1"}
    )
    assert reply.choices[0].message.content == "fake answer"
    assert reply.usage is not None
    assert reply.usage.total_tokens == 15
    sent = fake_provider.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert key not in json.dumps(sent.headers) + json.dumps(sent.body)
    assert "x-trace" not in sent.headers  # no client header reaches a provider
    (row,) = usage_rows(gateway)
    assert (row["user_id"], row["outcome"], row["entry_name"]) == ("alice", "success", "main")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (10, 5)
    assert key not in gateway.output()
    assert "say hi" not in gateway.output()
    assert "gateway_request" in gateway.output()
    assert "status=200" in gateway.output()


async def test_async_stream_with_usage_and_tools(gateway: Gateway, fake_provider: FakeProvider):
    key = gateway.new_key()
    async with openai.AsyncOpenAI(api_key=key, base_url=gateway.url + "/v1") as client:
        fake_provider.stream(["Hel", "lo"])
        stream = await client.chat.completions.create(
            model="economy", messages=HI, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Hello"
        assert chunks[-1].usage is not None
        assert fake_provider.requests[-1].body["model"] == "gpt-4.1-nano"
        call = {"id": "call_1", "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}  # fmt: skip
        body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": "gpt-4.1-mini", "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3}}  # fmt: skip
        fake_provider.fail(200, body=body)
        tool = {"type": "function", "function": {"name": "weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
        reply = await client.chat.completions.create(model="standard", messages=HI, tools=[tool])
        (got,) = reply.choices[0].message.tool_calls or []
        assert (got.function.name, json.loads(got.function.arguments)) == (
            "weather",
            {"city": "Oslo"},
        )
        assert fake_provider.requests[-1].body["tools"] == [tool]


class City(BaseModel):
    name: str
    country: str


def test_structured_output_through_parse(gateway: Gateway, fake_provider: FakeProvider) -> None:
    client = sdk(gateway, gateway.new_key())
    fake_provider.reply('{"name": "Oslo", "country": "Norway"}')
    reply = client.chat.completions.parse(model="standard", messages=HI, response_format=City)
    assert reply.choices[0].message.parsed == City(name="Oslo", country="Norway")
    assert fake_provider.requests[-1].body["response_format"]["type"] == "json_schema"


def test_errors_are_the_sdks_own(gateway: Gateway, fake_provider: FakeProvider) -> None:
    key = gateway.new_key()
    client = sdk(gateway, key)
    fake_provider.fail(429, "slow down", headers={"retry-after": "7"}, times=5)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="standard", messages=HI)
    assert caught.value.response.headers["retry-after"] == "7"
    fake_provider.clear()
    with pytest.raises(openai.NotFoundError, match="no active registry entry serves"):
        client.chat.completions.create(model="no-such-model", messages=HI)
    with pytest.raises(openai.AuthenticationError, match="unknown virtual key"):
        sdk(gateway, "csk-wrong").models.list()
    with pytest.raises(openai.AuthenticationError, match="not a virtual key"):
        sdk(gateway, PROVIDER_KEY).models.list()
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.embeddings.create(model="standard", input="hi")
    assert [r["outcome"] for r in usage_rows(gateway)] == ["error"]
    assert PROVIDER_KEY not in gateway.output()


def test_a_key_limited_to_a_tier_sees_and_uses_only_that_tier(gateway: Gateway) -> None:
    key = gateway.new_key("bob", "--model", "economy")
    client = sdk(gateway, key)
    assert [m.id for m in client.models.list()] == ["economy"]
    assert client.chat.completions.create(model="economy", messages=HI).choices
    assert client.chat.completions.create(model="cheap", messages=HI).choices  # the economy entry
    with pytest.raises(openai.PermissionDeniedError, match="may not use model 'standard'"):
        client.chat.completions.create(model="standard", messages=HI)


def test_expired_and_revoked_keys_are_refused(gateway: Gateway) -> None:
    key = gateway.new_key("carol", "--expires-in", "0.5")
    client = sdk(gateway, key)
    import time

    time.sleep(0.6)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        client.models.list()
    listed = gateway.keys("list")
    assert "expired" in listed.stdout
    assert key not in listed.stdout
    assert gateway.keys("revoke", "nope").returncode == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(gateway: Gateway) -> None:
    key = gateway.new_key()
    body = json.dumps({"model": "standard", "messages": HI})
    ok = subprocess.run(
        [CURL, "-sS", "-w", "\n%{http_code}", gateway.url + "/v1/chat/completions",
         "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
         "-d", body],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    answer, status = ok.stdout.rsplit("\n", 1)
    assert status == "200"
    assert json.loads(answer)["choices"][0]["message"]["content"]
    bad = subprocess.run(
        [CURL, "-sS", "-w", "\n%{http_code}", gateway.url + "/v1/chat/completions",
         "-H", f"Authorization: Bearer {key}", "-d", "{not json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    answer, status = bad.stdout.rsplit("\n", 1)
    assert status == "400"
    assert json.loads(answer)["error"]["code"] == "invalid_json"


def test_langchain_chat_openai_with_base_url(gateway: Gateway, fake_provider: FakeProvider):
    from langchain_openai import ChatOpenAI

    fake_provider.reply("from langchain")
    chat = ChatOpenAI(model="standard", base_url=gateway.url + "/v1", api_key=gateway.new_key())
    assert chat.invoke("hi").content == "from langchain"
    fake_provider.stream(["a", "b"])
    assert "".join(str(c.content) for c in chat.stream("hi")) == "ab"
