"""Issue 14 item 2: no key in a message we build. Every known key value (a registry entry's, a
row's that failed to load, a provider variable's) is masked in our errors and in what the CLI
prints; the pytest plugin masks configured keys in recorded bodies; the cassette linter flags a
key echoed raw after "Incorrect API key provided:". The admin action is checked in
tests/contrib/django/test_admin.py."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from creative_services import ConfigurationError, LLMEntry, UnknownModelError
from creative_services.testing.fake_provider import FakeProvider
from creative_services.testing.lint import lint_text

from ._helpers import leaked

# Not shaped like any provider's key: only knowing the value can mask it.
ROW_KEY = "opaque-" + "Qm4Zr8Lx2Vt6Np0Wc3Hj"
ENV_KEY = "corp-" + "Y7uT5rE3wQ1aS9dF8gH6"
ENTRY_KEY = "vault-" + "K2jH4gF6dS8aP0oI9uY7"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    clean.pop("CREATIVE_SERVICES_MODELS", None)
    return subprocess.run(
        [sys.executable, "-m", "creative_services.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )


def _row(**fields: object) -> dict[str, object]:
    return {"name": "m", "provider": "openai", "model_name": "gpt-4o", "api_key": ROW_KEY, **fields}


BAD_REGISTRIES = {
    "a row that is a list": [["m", "openai", ROW_KEY]],
    "a row that is a string": [_row(), ROW_KEY],
    "a mistyped max_tokens": [_row(max_tokens="lots")],
    "the key in max_tokens": [_row(max_tokens=ROW_KEY)],
    "the key in api_key_env": [_row(api_key=None, api_key_env=ROW_KEY)],
    "the key as the name": [_row(name=ROW_KEY, tier="bogus")],
    "a mistyped extra_params": [_row(extra_params=ROW_KEY)],
}


@pytest.mark.parametrize("command", ["doctor", "models", "generate"])
@pytest.mark.parametrize("case", sorted(BAD_REGISTRIES))
def test_cli_never_prints_a_key_of_a_bad_registry_row(command: str, case: str, tmp_path) -> None:
    args = [command, "hi", "--timeout", "5"] if command == "generate" else [command]
    env = {
        "CREATIVE_SERVICES_MODELS": json.dumps(BAD_REGISTRIES[case]),
        "CREATIVE_SERVICES_USAGE_DB": str(tmp_path / "usage.db"),
    }
    result = cli(*args, env=env)
    output = result.stdout + result.stderr
    assert leaked(ROW_KEY, output) == [], output
    assert "field '" in output, output  # the problem is still named, only the key is hidden
    assert result.returncode == 2, output


def test_cli_masks_an_environment_key_a_provider_echoes(fake_provider: FakeProvider) -> None:
    fake_provider.fail(401, f"Incorrect API key provided: {ENV_KEY}. You can find your key")
    env = {"OPENAI_API_KEY": ENV_KEY, "OPENAI_BASE_URL": fake_provider.base_url}
    result = cli("generate", "hi", "--tier", "economy", env=env)
    assert result.returncode == 1
    assert "AuthenticationError" in result.stderr
    assert leaked(ENV_KEY, result.stdout + result.stderr) == []
    assert fake_provider.requests[0].headers["authorization"] == f"Bearer {ENV_KEY}"


def test_our_errors_mask_every_known_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    LLMEntry(name="e", provider="openai", model_name="m", api_key=ENTRY_KEY)
    for error in (
        ConfigurationError(f"bad value {ENV_KEY!r} near {ENTRY_KEY}"),
        UnknownModelError(f"no LLM entry named {ENTRY_KEY!r}", key=ENTRY_KEY),
    ):
        for text in (str(error), repr(error), str(pickle.loads(pickle.dumps(error)))):
            assert leaked(ENV_KEY, text) == leaked(ENTRY_KEY, text) == [], text
            assert "**********" in text


def test_a_row_that_fails_to_load_masks_its_key_in_later_errors() -> None:
    from creative_services import DictRegistry, InvalidEntryError

    key = "row-" + "Zx9Cv7Bn5Mm3Ll1Kk8Jj"
    with pytest.raises(InvalidEntryError) as caught:
        DictRegistry.from_dict([_row(api_key=key), _row(name="n", api_key=key, temperature=key)])
    assert leaked(key, str(caught.value)) == [], str(caught.value)
    assert "temperature" in str(caught.value)


# --- the pytest plugin and the cassette linter ----------------------------------------------

PLUGIN_TEST = f'''
import os

import httpx
import pytest

from creative_services import LLMEntry

ENTRY = LLMEntry(name="e", provider="openai", model_name="m", api_key="{ENTRY_KEY}")
BASE = os.environ["FAKE_BASE"]


@pytest.mark.llm_cassette("echo.yaml")
def test_echo():
    sent = {{"model": "m", "messages": [{{"role": "user", "content": "{ENV_KEY} {ENTRY_KEY}"}}]}}
    first = httpx.post(BASE + "/chat/completions?n=1", json=sent)
    second = httpx.post(BASE + "/chat/completions?n=2", json=sent)
    assert (first.status_code, second.status_code) == (200, 401)
    assert "Incorrect API key provided" in second.text
'''


def test_plugin_masks_configured_keys_in_recorded_bodies(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CREATIVE_SERVICES_RECORD", "CREATIVE_SERVICES_ALLOW_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    with FakeProvider() as fake:
        fake.reply(f"you sent {ENV_KEY} and {ENTRY_KEY}")
        fake.fail(401, f"Incorrect API key provided: {ENTRY_KEY}. You can find your API key")
        monkeypatch.setenv("FAKE_BASE", fake.base_url)
        pytester.makeconftest('pytest_plugins = ["creative_services.testing.pytest_plugin"]\n')
        pytester.makepyfile(test_echo=textwrap.dedent(PLUGIN_TEST))
        result = pytester.runpytest_subprocess("--cs-record=once")
        result.assert_outcomes(passed=1)
        assert ENTRY_KEY in fake.requests[0].body["messages"][0]["content"]  # really sent
    text = (pytester.path / "cassettes" / "echo.yaml").read_text("utf-8")
    assert leaked(ENV_KEY, text) == leaked(ENTRY_KEY, text) == [], text
    assert text.count("**********") >= 4  # two requests, one answer, one error: all kept
    assert pytester.runpytest_subprocess().ret == 0  # replays offline, provider gone


@pytest.mark.parametrize(
    ("echoed", "flagged"),
    [
        (ROW_KEY, True),  # OpenAI repeats a key that is not OpenAI-shaped as it was sent
        ("abc/def+ghi=jkl", True),
        ("sk-abc1" + "*" * 20 + "wxyz", False),  # OpenAI's own masking
        ("**********", False),  # ours
        ("\\u003cnot-a-r****key\\u003e", False),
        ("REDACTED", False),
    ],
)
def test_linter_flags_a_key_echoed_raw_after_incorrect_api_key(
    echoed: str, flagged: bool, tmp_path: Path
) -> None:
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {echoed}. You can"}})
    cassette = f"interactions:\n- response:\n    body:\n      string: '{body}'\n"
    messages = [f.message for f in lint_text(cassette)]
    assert ("a key echoed after 'Incorrect API key provided:'" in messages) is flagged, messages
    assert leaked(ROW_KEY, " ".join(messages)) == []  # a finding never repeats the key
    path = tmp_path / "c.yaml"
    path.write_text(cassette, "utf-8")
    result = cli("cassettes", "lint", str(path), env={})
    assert result.returncode == (1 if flagged else 0), result.stdout + result.stderr
    assert leaked(ROW_KEY, result.stdout + result.stderr) == []
