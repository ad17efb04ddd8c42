"""Item 12: a key never leaks. A provider that echoes the key (a 401, a Gemini-style ``?key=``
URL) must not get it, or any 8-character piece of it, into a log line (ours or LiteLLM's, at
DEBUG), an error's str()/repr() (AllModelsFailedError and its failures included), an entry, a
response or a usage record. The Django admin pages are checked in
tests/contrib/django/test_faults.py."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from creative_services import (
    AllModelsFailedError,
    AuthenticationError,
    BadRequestError,
    LLMEntry,
    LLMError,
    RetryPolicy,
)
from creative_services.testing.fake_provider import FakeProvider

from ._helpers import KEY, OTHER_KEY, entry, leaked, make_client, records

GEMINI_KEY = "AIza" + "SyFaUlT-0123456789_abcdefghijKLMNO"
GATEWAY_KEY = "corp-gw-7f3a9c2e41b8d6a5"  # not shaped like any provider's key: masked as known
GOOD_KEY = "sk-" + "fault-good-ZyXwV2468TsRqP1357"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger (ours through structlog, LiteLLM's, httpx's) at DEBUG."""
    with caplog.at_level(logging.DEBUG):
        yield caplog


def everything_about(err: BaseException) -> str:
    """What an application could show of an error without digging into LiteLLM: our own
    errors, including every failure of an AllModelsFailedError."""
    parts = [str(err), repr(err), repr(err.__dict__)]
    for failure in getattr(err, "failures", ()):
        parts += [str(failure), repr(failure), repr(failure.__dict__)]
    parts.append(repr(pickle.loads(pickle.dumps(err)).__dict__))
    return "\n".join(parts)


def chained(err: BaseException) -> str:
    """The whole cause chain as a traceback prints it (``logger.exception`` does that)."""
    text = "".join(traceback.format_exception(err))
    for failure in getattr(err, "failures", ()):
        text += "".join(traceback.format_exception(failure))
    return text


async def test_forced_401_echoing_the_key_leaks_nowhere(fake_provider, fake_clock, all_logs):
    fake_provider.fail(401, f"Incorrect API key provided: {KEY}. Find your key at ...")
    fake_provider.reply("from the good key")
    client = make_client(
        [entry(fake_provider), entry(fake_provider, name="good", api_key=GOOD_KEY)], fake_clock
    )
    response = await client.generate(prompt="hi", metadata={"note": "leak scan"})
    assert response.content == "from the good key"

    fake_provider.fail(401, f"Incorrect API key provided: {KEY}")
    fake_provider.fail(401, f"Incorrect API key provided: {GOOD_KEY}")
    with pytest.raises(AllModelsFailedError) as info:
        await client.generate(prompt="hi")
    assert [type(f) for f in info.value.failures] == [AuthenticationError, AuthenticationError]

    surfaces = {
        "logs": all_logs.text + "\n".join(repr(r.__dict__) for r in all_logs.records),
        "errors": everything_about(info.value),
        "response": repr(response),
        "records": repr(records(client)),
        "entries": "\n".join(
            repr(e) + str(e) + repr(e.to_dict()) for e in client.registry.list_active()
        ),
        "client": repr(client) + repr(client.registry),
    }
    assert any("llm_call" in r.getMessage() for r in all_logs.records)
    for name, text in surfaces.items():
        for secret in (KEY, GOOD_KEY):
            assert leaked(secret, text) == [], f"{name} leaks a piece of {secret[:6]}..."


async def test_gemini_style_key_in_a_url_leaks_nowhere(fake_provider, fake_clock, all_logs):
    url = (
        f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash?key={GEMINI_KEY}"
    )
    fake_provider.fail(400, f"Request to {url} failed: API key not valid", times=2)
    gemini = LLMEntry(
        name="gemini",
        provider="gemini",
        model_name="gemini-2.5-flash",
        api_key=GEMINI_KEY,
        api_endpoint=fake_provider.base_url.removesuffix("/v1") + "/v1beta",
    )
    client = make_client([gemini], fake_clock, RetryPolicy(max_retries=0))
    with pytest.raises(LLMError) as info:
        await client.generate(prompt="hi")
    assert len(fake_provider.requests) == 1
    text = everything_about(info.value) + all_logs.text + repr(records(client))
    assert leaked(GEMINI_KEY, text) == []


async def test_a_key_of_no_known_shape_is_masked_as_a_known_secret(
    fake_provider, fake_clock, all_logs
):
    fake_provider.fail(400, f"gateway refused token {GATEWAY_KEY} for this route")
    gateway = entry(fake_provider, provider="openai_compatible", api_key=GATEWAY_KEY)
    client = make_client([gateway], fake_clock)
    with pytest.raises(BadRequestError) as info:
        await client.generate(prompt="hi")
    text = everything_about(info.value) + all_logs.text + repr(records(client))
    assert "gateway refused token" in str(info.value)
    assert leaked(GATEWAY_KEY, text) == []


async def test_the_cause_chain_holds_no_key(fake_provider, fake_clock):
    fake_provider.fail(401, f"Incorrect API key provided: {KEY}")
    fake_provider.fail(401, f"Incorrect API key provided: {OTHER_KEY}")
    client = make_client(
        [entry(fake_provider), entry(fake_provider, name="other", api_key=OTHER_KEY)], fake_clock
    )
    with pytest.raises(AllModelsFailedError) as info:
        await client.generate(prompt="hi")
    text = chained(info.value)
    assert leaked(KEY, text) == []
    assert leaked(OTHER_KEY, text) == []


async def test_the_key_is_sent_to_the_provider_only_in_its_header(fake_provider, fake_clock):
    client = make_client([entry(fake_provider)], fake_clock)
    await client.generate(prompt="hi")
    [request] = fake_provider.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    others: dict[str, Any] = {k: v for k, v in request.headers.items() if k != "authorization"}
    assert leaked(KEY, repr(others) + repr(request.body) + request.path) == []


def test_fake_provider_is_loopback_only():
    with FakeProvider() as fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
