"""Real provider answers, replayed from cassettes/ through DynamicLLMClient.

Each cassette holds one recorded exchange (see tools/convert_recordings.py and
cassettes/index.json); entries have no api_endpoint, so the client calls the provider's real
public URL and vcrpy answers from the cassette. Retries run on a fake clock: nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from creative_services import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    LLMEntry,
    LLMError,
    ModelNotFoundError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from creative_services.testing.cassettes import (
    REDACTED,
    find_credentials,
    scrub_request,
    scrub_response,
    use_cassette,
    vcr_config,
)
from creative_services.testing.clock import FakeClock
from creative_services.testing.fake_provider import FakeProvider
from creative_services.types import UsageRecord

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"
INDEX: dict[str, dict[str, Any]] = json.loads((CASSETTES / "index.json").read_text("utf-8"))
NON_STREAMED = sorted(name for name, item in INDEX.items() if not item["streamed"])
STREAMED = sorted(name for name, item in INDEX.items() if item["streamed"])
SUCCESSES = [name for name in NON_STREAMED if INDEX[name]["expect"]["error_status"] is None]
ERRORS = [name for name in NON_STREAMED if INDEX[name]["expect"]["error_status"] is not None]

KEY = "test-key"
PROMPT = "Answer the question."
# Deterministic backoff (0.5 s, then 1 s); everything else is the default policy.
POLICY = RetryPolicy(jitter=0.0)

# cost LiteLLM's completion_cost() reports for the same answer (docs: LITELLM-NOTES.md, 2c).
LITELLM_COST = {
    "anthropic-plain": "0.000081",
    "anthropic-system-prompt": "0.001377",
    "anthropic-tool-use": "0.001008",
    "cohere-chat-v2": "0.0013675",
    "gemini-generate-content-system": "0.0022328",
    "mistral-chat-plain": "0.00002675",
    "openai-chat-max-tokens-seed": "0.000009",
    "openai-chat-system-user": "0.00017",
    "openai-json-schema-output": "0.0012475",
    "openai-tool-calls-parallel": "0.00004185",
}


class Expected(NamedTuple):
    error: type[LLMError]
    attempts: int
    sleeps: list[float]
    retry_after: float | None = None


EXPECTED_ERRORS: dict[str, Expected] = {
    # x-should-retry: false, and 400 is not retryable anyway
    "anthropic-400-invalid-request": Expected(BadRequestError, 1, []),
    "anthropic-401-invalid-api-key": Expected(AuthenticationError, 1, []),
    # retry-after: 7 honoured twice
    "anthropic-429-rate-limit": Expected(RateLimitError, 3, [7.0, 7.0], 7.0),
    # 529 overloaded, x-should-retry: true, no retry-after: backoff
    "anthropic-529-overloaded": Expected(ServiceUnavailableError, 3, [0.5, 1.0]),
    # RetryInfo 48s is above max_retry_after (20 s): give up on this entry at once
    "gemini-429-resource-exhausted": Expected(RateLimitError, 1, [], 48.0),
    "groq-429-rate-limit": Expected(RateLimitError, 3, [3.0, 3.0], 3.0),
    "mistral-401-unauthorized": Expected(AuthenticationError, 1, []),
    "mistral-500-service-unavailable": Expected(ServiceUnavailableError, 3, [0.5, 1.0]),
    "openai-401-invalid-api-key": Expected(AuthenticationError, 1, []),
    "openai-404-model-not-found": Expected(ModelNotFoundError, 1, []),
    # "Request too large" for the TPM limit: waiting does not help
    "openai-429-request-too-large": Expected(QuotaExceededError, 1, []),
    # upstream rate limit without any retry header: backoff
    "openrouter-429-upstream-rate-limit": Expected(RateLimitError, 3, [0.5, 1.0]),
}


def _params(names: list[str]) -> list[Any]:
    return [
        pytest.param(
            name,
            id=name,
        )
        for name in names
    ]


def _entry(name: str, **overrides: Any) -> LLMEntry:
    item = INDEX[name]
    fields: dict[str, Any] = {
        "name": name,
        "provider": item["provider"],
        "model_name": item["model"],
        "tier": "local" if item["provider"] == "ollama" else "standard",
        "api_key": KEY,
    }
    fields.update(overrides)
    return LLMEntry(**fields)


def _client(entry: LLMEntry, clock: FakeClock) -> DynamicLLMClient:
    return DynamicLLMClient(
        DictRegistry([entry]),
        tracker=InMemoryUsageTracker(),
        retry_policy=POLICY,
        clock=clock,
        sleep=clock.sleep,
    )


def _records(client: DynamicLLMClient) -> list[UsageRecord]:
    assert isinstance(client.tracker, InMemoryUsageTracker)
    return list(client.tracker.records)


def _tool_calls(calls: Any) -> list[tuple[str, Any]]:
    return [(call["name"], json.loads(call["arguments"])) for call in calls]


def _cassette(name: str) -> Path:
    return CASSETTES / INDEX[name]["cassette"]


async def _generate(client: DynamicLLMClient, name: str, entry: LLMEntry) -> Any:
    with use_cassette(_cassette(name)):
        # A hang would be a bug: fail instead of waiting for the 60 s deadline.
        return await asyncio.wait_for(client.generate(prompt=PROMPT, tier=entry.tier), 30)


# --- the index ------------------------------------------------------------------------------


def test_index_covers_every_recording() -> None:
    assert len(INDEX) == 29
    assert len(NON_STREAMED) == 24
    assert set(EXPECTED_ERRORS) == set(ERRORS)
    for item in INDEX.values():
        assert (CASSETTES / item["cassette"]).is_file()
        assert item["cassette"].startswith(item["provider"] + "/")


# --- successes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _params(SUCCESSES))
async def test_recorded_answer_replays_through_client(name: str, fake_clock: FakeClock) -> None:
    expect = INDEX[name]["expect"]
    entry = _entry(name)
    client = _client(entry, fake_clock)

    response = await _generate(client, name, entry)

    if "tool_calls" in expect:
        assert _tool_calls(response.tool_calls) == _tool_calls(expect["tool_calls"])
        assert not response.content  # the answer holds only tool calls
    else:
        assert response.content == expect["content"]
        assert response.tool_calls == ()
    assert response.usage.prompt_tokens == expect["prompt_tokens"]
    assert response.usage.completion_tokens == expect["completion_tokens"]
    assert response.usage.estimated is False
    if expect["model"] is not None:
        assert response.model == expect["model"]
    assert response.attempts == 1
    assert response.entry.name == name
    assert fake_clock.sleeps == []

    if entry.tier.value == "local":
        assert (response.cost, response.cost_source) == (Decimal(0), "local")
    elif response.cost is None:
        assert response.cost_source == "unknown"
    else:
        assert isinstance(response.cost, Decimal)
        assert response.cost_source == "litellm"
    if name in LITELLM_COST:
        assert response.cost == pytest.approx(Decimal(LITELLM_COST[name]), rel=Decimal("1e-9"))

    [record] = _records(client)
    assert record.outcome == "success"
    assert record.error_class is None
    assert record.attempts == 1
    assert (record.prompt_tokens, record.completion_tokens) == (
        expect["prompt_tokens"],
        expect["completion_tokens"],
    )
    assert record.cost == response.cost
    assert record.cost_source == response.cost_source
    assert record.entry_name == name
    assert record.provider == entry.provider


async def test_gemini_thinking_tokens_are_reported_apart(fake_clock: FakeClock) -> None:
    # Gemini's candidatesTokenCount (663) excludes the 227 thinking tokens; LiteLLM adds them up.
    name = "gemini-generate-content-system"
    entry = _entry(name)
    response = await _generate(_client(entry, fake_clock), name, entry)
    assert response.usage.completion_tokens == 663
    assert response.usage.reasoning_tokens == 227
    assert response.usage.output_tokens == 890


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _params(ERRORS))
async def test_recorded_error_gives_typed_error_and_retry_decision(
    name: str, fake_clock: FakeClock
) -> None:
    expect = INDEX[name]["expect"]
    expected = EXPECTED_ERRORS[name]
    entry = _entry(name)
    client = _client(entry, fake_clock)

    with pytest.raises(LLMError) as info:
        await _generate(client, name, entry)

    err = info.value
    assert type(err) is expected.error, f"{type(err).__name__}: {err}"
    assert err.status_code == expect["error_status"]
    assert err.retry_after == expected.retry_after
    assert err.attempts == expected.attempts
    assert fake_clock.sleeps == expected.sleeps
    assert err.provider == entry.provider
    assert err.model == entry.model_name
    assert err.entry is not None
    assert err.entry.name == name
    assert KEY not in str(err)
    assert KEY not in repr(err)
    assert KEY not in repr(err.__dict__)

    [record] = _records(client)
    assert record.outcome == "error"
    assert record.error_class == expected.error.__name__
    assert record.attempts == expected.attempts
    assert (record.prompt_tokens, record.completion_tokens) == (0, 0)
    assert record.cost is None


async def test_anthropic_529_keeps_its_status(fake_clock: FakeClock) -> None:
    # LiteLLM reports the 529 as InternalServerError 500; only provider_status_code has 529.
    name = "anthropic-529-overloaded"
    entry = _entry(name)
    with pytest.raises(ServiceUnavailableError) as info:
        await _generate(_client(entry, fake_clock), name, entry)
    assert info.value.status_code == 529
    assert info.value.should_retry is True


# Groq entries work once the Groq URL is given explicitly: the cassettes and the rest of the
# mapping are right; only the default route is not (see GROQ_ROUTE).
async def test_groq_answer_replays_with_explicit_endpoint(fake_clock: FakeClock) -> None:
    name = "groq-chat-plain"
    expect = INDEX[name]["expect"]
    entry = _entry(name, api_endpoint="https://api.groq.com")
    response = await _generate(_client(entry, fake_clock), name, entry)
    assert response.content == expect["content"]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (18, 43)
    assert response.model == expect["model"]


async def test_groq_rate_limit_honours_retry_after_with_explicit_endpoint(
    fake_clock: FakeClock,
) -> None:
    name = "groq-429-rate-limit"
    entry = _entry(name, api_endpoint="https://api.groq.com/openai/v1")
    client = _client(entry, fake_clock)
    with pytest.raises(RateLimitError) as info:
        await _generate(client, name, entry)
    assert type(info.value) is RateLimitError
    assert (info.value.status_code, info.value.retry_after, info.value.attempts) == (429, 3.0, 3)
    assert fake_clock.sleeps == [3.0, 3.0]
    [record] = _records(client)
    assert (record.outcome, record.error_class) == ("error", "RateLimitError")


async def test_long_retry_after_is_waited_when_the_policy_allows_it(
    fake_clock: FakeClock,
) -> None:
    name = "gemini-429-resource-exhausted"
    entry = _entry(name)
    client = DynamicLLMClient(
        DictRegistry([entry]),
        tracker=InMemoryUsageTracker(),
        retry_policy=RetryPolicy(max_retry_after=60.0, timeout=600.0),
        clock=fake_clock,
        sleep=fake_clock.sleep,
    )
    with pytest.raises(RateLimitError) as info:
        await _generate(client, name, entry)
    assert info.value.attempts == 3
    assert fake_clock.sleeps == [48.0, 48.0]


# --- cassette misses ------------------------------------------------------------------------


async def test_cassette_miss_is_a_typed_error_not_a_hang(fake_clock: FakeClock) -> None:
    # An OpenAI entry replayed against an Anthropic cassette: no recorded request matches.
    entry = LLMEntry(
        name="miss", provider="openai", model_name="gpt-4o-mini", tier="standard", api_key=KEY
    )
    client = _client(entry, fake_clock)
    with pytest.raises(APIConnectionError) as info:
        await _generate(client, "anthropic-plain", entry)
    err = info.value
    assert err.status_code is None
    assert "CannotOverwriteExistingCassetteException" in str(err)
    assert KEY not in str(err)
    assert KEY not in repr(err)
    [record] = _records(client)
    assert (record.outcome, record.error_class) == ("error", "APIConnectionError")


async def test_cassette_miss_named_like_a_rate_limit_is_still_a_connection_error(
    fake_clock: FakeClock,
) -> None:
    entry = LLMEntry(
        name="miss", provider="openai", model_name="gpt-4o-mini", tier="standard", api_key=KEY
    )
    client = _client(entry, fake_clock)
    with pytest.raises(LLMError) as info:
        await _generate(client, "groq-429-rate-limit", entry)
    assert type(info.value) is APIConnectionError
    assert info.value.status_code is None


# --- streams: the cassettes replay through LiteLLM (the client does not stream yet) ----------


@pytest.mark.parametrize("name", _params(STREAMED))
async def test_recorded_stream_replays_through_litellm(name: str) -> None:
    from creative_services import _litellm, _sync

    expect = INDEX[name]["expect"]
    entry = _entry(name)
    kwargs = _litellm.build_kwargs(
        entry,
        KEY,
        [{"role": "user", "content": PROMPT}],
        max_tokens=256,
        temperature=0.0,
        timeout=30.0,
        params={"stream": True},
    )

    async def collect() -> tuple[str, dict[int, dict[str, str]]]:
        litellm = _litellm.load()
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        stream = await litellm.acompletion(**kwargs)
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            text.append(delta.content or "")
            for call in getattr(delta, "tool_calls", None) or ():
                slot = calls.setdefault(call.index, {"name": "", "arguments": ""})
                slot["name"] += call.function.name or ""
                slot["arguments"] += call.function.arguments or ""
        return "".join(text), calls

    with use_cassette(_cassette(name)):
        content, calls = await asyncio.wait_for(_sync.run_async(collect()), 30)

    assert content == (expect["content"] or "")
    if "tool_calls" in expect:
        ordered = [calls[i] for i in sorted(calls)]
        assert _tool_calls(ordered) == _tool_calls(expect["tool_calls"])


# --- credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(CASSETTES.rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(CASSETTES)),
)
def test_cassette_holds_no_credentials(path: Path) -> None:
    assert find_credentials(path) == []
    text = path.read_text("utf-8").lower()
    for header in ("authorization:", "x-api-key:", "x-goog-api-key:", "api-key:", "cookie:"):
        assert f"\n      {header}" not in text  # a header key inside request/response headers


def test_find_credentials_reports_key_headers_and_query(tmp_path: Path) -> None:
    path = tmp_path / "leaky.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n"
        "    body: null\n"
        "    headers:\n"
        "      Authorization:\n"
        "      - Bearer " + "abcdefghijklmnopqrstuvwxyz\n"
        "    method: POST\n"
        "    uri: https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key=x\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers:\n"
        "      set-cookie:\n"
        "      - session=1\n"
        "    body: {string: ''}\n"
        "version: 1\n",
        encoding="utf-8",
    )
    problems = find_credentials(path)
    assert any("'Authorization'" in p for p in problems)
    assert any("'set-cookie'" in p for p in problems)
    assert any("'key'" in p for p in problems)
    assert any("shaped like an API key" in p for p in problems)


def test_vcr_config_scrubs_and_matches_on_url() -> None:
    config = vcr_config()
    assert config["record_mode"] == "none"
    assert config["allow_playback_repeats"] is True
    assert config["match_on"] == ["method", "scheme", "host", "port", "path", "query"]
    for header in ("authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"):
        assert header in config["filter_headers"]
    assert "set-cookie" in config["filter_headers"]
    assert "key" in config["filter_query_parameters"]
    assert vcr_config(record_mode="once")["record_mode"] == "once"


def test_scrub_request_replaces_keys_in_json_bodies() -> None:
    class Request:
        body: bytes | None = json.dumps(
            {"model": "m", "api_key": "secret-1", "nested": [{"apiKey": "secret-2"}], "key": "k"}
        ).encode()

    request = scrub_request(Request())
    assert request.body is not None
    data = json.loads(request.body)
    assert data["api_key"] == REDACTED
    assert data["nested"][0]["apiKey"] == REDACTED
    assert data["key"] == "k"  # a plain "key" field is content (tool schemas use it)
    untouched = Request()
    untouched.body = b"not json"
    assert scrub_request(untouched).body == b"not json"


def test_scrub_response_drops_cookies_and_account_ids() -> None:
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Set-Cookie": ["a=b"], "openai-organization": ["org"], "x-request-id": ["r"]},
        "body": {"string": ""},
    }
    assert scrub_response(response)["headers"] == {"x-request-id": ["r"]}


async def test_recording_a_cassette_stores_no_key(
    tmp_path: Path, fake_provider: FakeProvider, fake_clock: FakeClock
) -> None:
    fake_provider.reply(
        "hi", prompt_tokens=3, completion_tokens=1, headers={"set-cookie": "session=abc"}
    )
    secret = "sk-" + "live-abcdefghijklmnopqrstuvwxyz0123"
    entry = LLMEntry(
        name="echo",
        provider="openai",
        model_name="gpt-4o-mini",
        api_key=secret,
        api_endpoint=fake_provider.base_url,
    )
    path = tmp_path / "echo.yaml"
    with use_cassette(path, record_mode="once"):
        first = await _client(entry, fake_clock).generate(prompt=PROMPT)
    assert first.content == "hi"
    text = path.read_text("utf-8")
    assert secret not in text
    assert find_credentials(path) == []
    with use_cassette(path):  # and it replays
        again = await _client(entry, fake_clock).generate(prompt=PROMPT)
    assert again.content == "hi"


def test_importing_cassettes_module_does_not_import_vcr() -> None:
    code = (
        "import sys, creative_services.testing.cassettes as c; "
        "assert 'vcr' not in sys.modules, 'vcr imported'; "
        "assert 'litellm' not in sys.modules, 'litellm imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
