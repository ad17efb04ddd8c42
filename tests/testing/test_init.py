"""creative_services.testing: a small, documented surface that costs nothing to import."""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Callable

import creative_services.testing as testing


def test_all_is_sorted_complete_and_documented() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        value = getattr(testing, name)
        if name != "FAKE_API_KEY":
            assert inspect.getdoc(value), name
    assert set(testing.__all__) <= set(dir(testing))


def test_importing_testing_loads_neither_litellm_nor_vcr(
    run_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = run_python(
        """
        import sys
        import creative_services.testing as t
        from creative_services.testing import FakeLLM, capture_usage, override_registry
        import creative_services.testing.lint, creative_services.testing.pytest_plugin
        for name in ("litellm", "vcr", "yaml", "openai", "httpx", "aiohttp"):
            assert name not in sys.modules, name
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
