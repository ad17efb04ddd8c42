"""The opt-in pytest plugin, run in real pytest subprocesses (pytester): recording scrubs every
key, replay works with the provider gone, real hosts are blocked with a message saying how to
record, and --cs-record re-records."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from creative_services.testing.fake_provider import FakeProvider
from creative_services.testing.lint import lint_file

KEY = "sk-live-" + "Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1"

CONFTEST = 'pytest_plugins = ["creative_services.testing.pytest_plugin"]\n'

RECORDING_TEST = f'''
import os

import aiohttp
import asyncio
import httpx
import pytest

from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, LLMEntry

KEY = "{KEY}"
BASE = os.environ["FAKE_BASE"]


def _client():
    entry = LLMEntry(name="echo", provider="openai", model_name="gpt-4o-mini", api_key=KEY,
                     api_endpoint=BASE)
    return DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())


async def _aiohttp_call():
    async with aiohttp.ClientSession() as session:
        async with session.post(
            BASE + "/chat/completions?n=2&api_key=" + KEY,
            headers={{"x-api-key": KEY}},
            json={{"apiKey": KEY, "messages": []}},
        ) as response:
            return (await response.json())["choices"][0]["message"]["content"]


@pytest.mark.llm_cassette("echo.yaml")
def test_echo():
    first = httpx.post(
        BASE + "/chat/completions?n=1&key=" + KEY,
        headers={{"authorization": "Bearer " + KEY, "cookie": "session=s3cr3t-cookie"}},
        json={{"model": "m", "api_key": KEY, "messages": []}},
    ).json()["choices"][0]["message"]["content"]
    answers = [first, asyncio.run(_aiohttp_call())]
    if os.environ.get("WITH_CLIENT"):  # through LiteLLM (slow to import: only where needed)
        answers.append(_client().generate_sync("hi").content)
    assert answers == os.environ["EXPECT"].split(",")
'''


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def project(pytester: pytest.Pytester, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CREATIVE_SERVICES_RECORD", "CREATIVE_SERVICES_ALLOW_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAKE_BASE", fake.base_url)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_echo=RECORDING_TEST)
    return pytester.path / "cassettes" / "echo.yaml"


def _script(fake: FakeProvider, *answers: str) -> None:
    for answer in answers:
        fake.reply(answer, headers={"set-cookie": "session=server-cookie"})


def test_recording_scrubs_every_key_then_replays_offline(
    pytester: pytest.Pytester,
    project: Path,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _script(fake, "a", "b", "c")
    monkeypatch.setenv("EXPECT", "a,b,c")
    monkeypatch.setenv("WITH_CLIENT", "1")
    result = pytester.runpytest_subprocess("--cs-record=once")
    result.assert_outcomes(passed=1)
    assert len(fake.requests) == 3
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was really sent
    text = project.read_text("utf-8")
    assert KEY not in text
    assert "s3cr3t-cookie" not in text
    assert "server-cookie" not in text
    assert lint_file(project) == []
    fake.stop()  # replay needs no provider
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_a_missing_cassette_says_how_to_record(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cassettes/echo.yaml does not exist*--cs-record=once*"])


def test_record_all_re_records_and_once_keeps(
    pytester: pytest.Pytester,
    project: Path,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _script(fake, "a", "b")
    monkeypatch.setenv("EXPECT", "a,b")
    pytester.runpytest_subprocess("--cs-record=once").assert_outcomes(passed=1)
    _script(fake, "x", "y")
    pytester.runpytest_subprocess("--cs-record=once").assert_outcomes(passed=1)  # kept
    assert len(fake.requests) == 2
    monkeypatch.setenv("EXPECT", "x,y")
    monkeypatch.setenv("CREATIVE_SERVICES_RECORD", "all")  # the env twin of --cs-record=all
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert len(fake.requests) == 4
    monkeypatch.delenv("CREATIVE_SERVICES_RECORD")
    pytester.runpytest_subprocess().assert_outcomes(passed=1)  # replays the new answers
    assert KEY not in project.read_text("utf-8")


BLOCKED_TEST = """
import socket

import httpx
import pytest

from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, LLMEntry
from creative_services.testing.pytest_plugin import NetworkBlockedError, _guard


def test_raw_connection():
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    httpx.get("https://api.openai.com/v1/models")


def test_swallowed_inside_the_client():
    entry = LLMEntry(name="real", provider="openai", model_name="gpt-4o-mini",
                     api_key="sk-test-not-real", api_endpoint="https://api.example.com/v1")
    client = DynamicLLMClient(DictRegistry([entry]), tracker=InMemoryUsageTracker())
    try:
        client.generate_sync("hi", timeout=5)
    except Exception:
        pass  # the application hides the error: the test still fails


def test_loopback_is_fine(fake_llm, llm_usage):
    assert fake_llm.client().generate_sync("hi").content == "fake answer"
    assert len(llm_usage) == 1


@pytest.mark.allow_network
def test_marker_allows():
    assert _guard.allowed()


def test_invalid_names_fail_as_dns_would():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("provider.invalid", 443)
"""


def test_real_network_calls_are_blocked_with_how_to_record(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_blocked=BLOCKED_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*blocked a real network call to api.openai.com:443 in test_blocked.py::"
            "test_raw_connection*--cs-record=once*",
            "*blocked a real network call to api.example.com:443*test_swallowed*",
        ]
    )
    allowed = pytester.runpytest_subprocess("--cs-allow-network", "-k", "marker or loopback")
    allowed.assert_outcomes(passed=2)


def test_plugin_help_lists_the_options(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--cs-record=MODE*", "*--cs-allow-network*"])
    markers = pytester.runpytest_subprocess("--markers")
    markers.stdout.fnmatch_lines(["*llm_cassette(path=None*", "*allow_network*"])


def test_default_cassette_path_follows_module_and_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_named=textwrap.dedent(
            """
            import pytest

            @pytest.mark.llm_cassette
            def test_one(llm_cassette):
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*cassettes/test_named/test_one.yaml does not exist*"])
