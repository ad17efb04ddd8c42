"""Shared fixtures. The fake provider, fake clock, FakeLLM, cassette and usage fixtures come from
the plugin we ship to users (creative_services.testing.pytest_plugin), which also blocks real
network calls for the whole suite."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

pytest_plugins = ["pytester", "creative_services.testing.pytest_plugin"]


def _run_python(
    code: str, env: dict[str, str] | None = None, *flags: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with no provider keys but those in ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    full_env.pop("CREATIVE_SERVICES_MODELS", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def run_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    return _run_python
