"""Test helpers for applications using creative-services (and for our own suite).

- :class:`FakeLLM`: a scripted LLM on loopback that plugs in as registry entries.
- :func:`override_registry`: make the bridges and the OpenAI drop-in use another registry.
- :func:`capture_usage`: collect the usage records calls make.
- :class:`FakeProvider`: the OpenAI/Anthropic-compatible loopback server under :class:`FakeLLM`.
- :class:`FakeClock`: retry waits without waiting.
- :func:`use_cassette` / :func:`find_credentials`: replay recorded provider calls; check them.
- ``creative_services.testing.pytest_plugin``: fixtures, cassettes and blocked network for
  pytest (opt in with ``pytest_plugins = ["creative_services.testing.pytest_plugin"]``).
- ``creative_services.testing.lint``: the cassette credential linter.

Names are imported on first use: importing this package loads neither LiteLLM nor vcrpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from creative_services.testing.cassettes import find_credentials, use_cassette
    from creative_services.testing.clock import FakeClock
    from creative_services.testing.fake_llm import FAKE_API_KEY, FakeLLM
    from creative_services.testing.fake_provider import FakeProvider, RecordedRequest
    from creative_services.testing.overrides import (
        RegistryOverride,
        UsageCapture,
        capture_usage,
        override_registry,
    )

_WHERE = {
    "FAKE_API_KEY": "fake_llm",
    "FakeClock": "clock",
    "FakeLLM": "fake_llm",
    "FakeProvider": "fake_provider",
    "RecordedRequest": "fake_provider",
    "RegistryOverride": "overrides",
    "UsageCapture": "overrides",
    "capture_usage": "overrides",
    "find_credentials": "cassettes",
    "override_registry": "overrides",
    "use_cassette": "cassettes",
}

__all__ = [
    "FAKE_API_KEY",
    "FakeClock",
    "FakeLLM",
    "FakeProvider",
    "RecordedRequest",
    "RegistryOverride",
    "UsageCapture",
    "capture_usage",
    "find_credentials",
    "override_registry",
    "use_cassette",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
