"""Django for the tests of this directory only, never in the process of the rest of the suite.

Configuring Django changes behaviour elsewhere (the BFAgent bridges pick the Django registry when
Django is configured), so a run of the whole suite only collects ``test_suites.py`` here, which
runs this directory in two child pytest processes: one on SQLite, one on PostgreSQL. A run of
this directory alone (``pytest tests/contrib/django``) configures Django in-process, on SQLite,
or on PostgreSQL with ``CS_TEST_DB=postgres``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
IN_PROCESS_ENV = "CS_DJANGO_IN_PROCESS"


def in_process(config: pytest.Config) -> bool:
    """Whether this pytest process runs the Django tests itself (only they were asked for)."""
    if os.environ.get(IN_PROCESS_ENV):
        return True
    base = config.invocation_params.dir
    paths = [(base / str(arg).split("::")[0]).resolve() for arg in config.args]
    return bool(paths) and all(p == HERE or HERE in p.parents for p in paths)


def pytest_configure(config: pytest.Config) -> None:
    if not in_process(config):
        return
    import django
    from django.conf import settings

    from . import settings as test_settings

    if not settings.configured:
        settings.configure(
            **{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()}
        )
        django.setup()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    runner = collection_path.name == "test_suites.py"
    return runner if in_process(config) else not runner


KEY = "sk-" + "test-abcdefghijklmnopqrstuvwxyz0123"
LEGACY = "legacyapp.Llms"


@pytest.fixture(autouse=True)
def _fresh_registry_watcher() -> Iterator[None]:
    """Each test starts with no snapshot, and no watcher connection outlives it."""
    from creative_services.contrib.django.registry import stop_registry_watcher

    stop_registry_watcher()
    yield
    stop_registry_watcher()


def _row_defaults(fake_provider: Any) -> dict[str, Any]:
    """The seed's fields for a row that points at the fake provider (shipped or legacy model)."""
    return {
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "tier": "standard",
        "api_key": KEY,
        "api_endpoint": fake_provider.base_url,
        "cost_per_1k_input": "0.00015",
        "cost_per_1k_output": "0.0006",
    }


@pytest.fixture
def make_llm(fake_provider: Any) -> Callable[..., Any]:
    """Create a committed row of the shipped model that points at the fake provider."""
    from creative_services.contrib.django.models import LLMModel

    def make(name: str = "primary", **fields: Any) -> Any:
        values = {**_row_defaults(fake_provider), **fields}
        return LLMModel.objects.create(name=name, **values)

    return make


@pytest.fixture
def make_legacy(fake_provider: Any) -> Callable[..., Any]:
    """Create a row of the legacy ``Llms`` model (the seed's fields only)."""
    from .legacyapp.models import Llms

    def make(name: str = "legacy", **fields: Any) -> Any:
        values = {**_row_defaults(fake_provider), **fields}
        return Llms.objects.create(name=name, **values)

    return make


@pytest.fixture
def legacy_model(settings: Any) -> str:
    """Point the adapter at the legacy model for this test."""
    settings.CREATIVE_SERVICES_LLM_MODEL = LEGACY
    return LEGACY
