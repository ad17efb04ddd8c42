"""``creative_services.adapters``: the seed's import path, lazy about Django."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import creative_services.adapters as adapters


def test_importing_adapters_loads_no_django():
    code = """
        import sys
        import creative_services.adapters
        print(sorted(m for m in sys.modules if m.split(".")[0] == "django"))
        from creative_services.adapters import DjangoLLMRegistry, DjangoUsageTracker
        print(DjangoLLMRegistry.__module__, DjangoUsageTracker.__module__)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == "[]"
    assert second == (
        "creative_services.contrib.django.registry creative_services.contrib.django.tracking"
    )


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchAdapter"):
        adapters.NoSuchAdapter  # noqa: B018


def test_all_is_sorted_and_listed_by_dir():
    assert adapters.__all__ == sorted(adapters.__all__)
    assert set(adapters.__all__) <= set(dir(adapters))
