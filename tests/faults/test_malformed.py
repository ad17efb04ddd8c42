"""Issue 14 item 8: a success status with a body that is not a completion (HTML, broken JSON,
``{}``, ``null``, no choices) is a MalformedResponseError carrying the real status 200, retried
once on the same entry and then answered by the next entry. It used to be a bare IndexError
that skipped the fallback, or "openai 500" retried three times."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    LLMError,
    MalformedResponseError,
    RetryPolicy,
)
from creative_services.retry import Action, decide
from creative_services.testing.fake_provider import FakeProvider

from ._helpers import KEY, entry, records

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}

BODIES = {
    "no-choices": json.dumps(
        {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []}
    ).encode(),
    "no-message": json.dumps(
        {"id": "x", "object": "chat.completion", "model": "m", "choices": [{"index": 0}]}
    ).encode(),
    "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "cut-json": b'{"id": "chatcmpl-1", "choices": [{"message": ',
    "empty-object": b"{}",
    "null": b"null",
    "a-string": b'"hello"',
}


@pytest.fixture
def backup() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


def client_for(*entries: Any, retries: int = 2) -> DynamicLLMClient:
    return DynamicLLMClient(
        DictRegistry(list(entries)),
        tracker=InMemoryUsageTracker(),
        retry_policy=RetryPolicy(max_retries=retries, base_delay=0, timeout=20),
    )


def content_type(name: str) -> dict[str, str]:
    return {"content-type": "text/html"} if name == "html" else {}


@pytest.mark.parametrize("provider", sorted(MODELS))
@pytest.mark.parametrize("name", sorted(BODIES))
async def test_a_malformed_answer_is_retried_once_then_the_next_entry_answers(
    fake_provider, backup, name, provider
):
    fake_provider.fail(200, body=BODIES[name], headers=content_type(name), times=5)
    backup.reply("from the backup")
    primary = entry(fake_provider, provider=provider, model_name=MODELS[provider])
    client = client_for(primary, entry(backup, name="backup", priority=5))

    response = await client.generate(prompt="hi")

    assert response.content == "from the backup"
    assert len(fake_provider.requests) == 2  # the first try and one retry, not three
    assert len(backup.requests) == 1
    (record,) = records(client)
    assert (record.outcome, record.entry_name) == ("success", "backup")


@pytest.mark.parametrize("name", sorted(BODIES))
def test_without_a_fallback_the_typed_error_carries_the_real_status(fake_provider, name):
    fake_provider.fail(200, body=BODIES[name], headers=content_type(name), times=5)
    client = client_for(entry(fake_provider))

    with pytest.raises(MalformedResponseError) as info:
        client.generate_sync(prompt="hi")

    err = info.value
    assert err.status_code == 200
    assert err.attempts == 2
    assert "not a completion" in str(err)
    assert len(fake_provider.requests) == 2
    (record,) = records(client)
    assert (record.outcome, record.error_class) == ("error", "MalformedResponseError")


def test_a_malformed_answer_that_echoes_the_key_does_not_show_it(fake_provider):
    fake_provider.fail(200, body=f"<html>bad key {KEY}</html>".encode(), times=5)
    client = client_for(entry(fake_provider), retries=0)
    with pytest.raises(MalformedResponseError) as info:
        client.generate_sync(prompt="hi")
    assert KEY[8:24] not in str(info.value)
    assert KEY[8:24] not in repr(info.value.__cause__)


def test_a_real_500_is_still_a_500_retried_as_before(fake_provider):
    fake_provider.fail(500, "upstream broke", times=5)
    client = client_for(entry(fake_provider))
    with pytest.raises(LLMError) as info:
        client.generate_sync(prompt="hi")
    assert not isinstance(info.value, MalformedResponseError)
    assert info.value.status_code == 500
    assert len(fake_provider.requests) == 3


@pytest.mark.parametrize(
    ("max_retries", "done", "action"),
    [
        (2, 0, Action.RETRY),
        (2, 1, Action.FALLBACK),
        (9, 1, Action.FALLBACK),
        (0, 0, Action.FALLBACK),
    ],
)
def test_decide_retries_a_malformed_answer_at_most_once(max_retries, done, action):
    error = MalformedResponseError("openai 200: not a completion", status_code=200)
    decision = decide(
        error,
        retries_done=done,
        policy=RetryPolicy(max_retries=max_retries),
        remaining=30.0,
        rand=0.0,
    )
    assert decision.action is action
