"""BFAgent bridges: ``generate_text()`` returning a plain ``str``, sync and async.

::

    from creative_services.adapters import BFAgentLLMBridge, AsyncBFAgentLLMBridge
    BFAgentLLMBridge().generate_text(prompt="...", system_prompt="...", tier="standard")
    await AsyncBFAgentLLMBridge().generate_text(prompt="...", tier="premium")

Without arguments a bridge uses the Django registry and usage tracker when Django is configured
with ``creative_services.contrib.django`` installed, otherwise ``DictRegistry.from_env()`` and the
embedded SQLite usage store. Both are injectable, as is a ready ``DynamicLLMClient``.

The sync bridge runs on the library's one background event loop: it works in plain scripts,
from many threads, in Celery tasks and while an event loop runs in the calling thread (async
views, Jupyter), with no loop created per call.
"""

from __future__ import annotations

import sys
from typing import Any

from creative_services.client import DynamicLLMClient
from creative_services.registry import LLMRegistry
from creative_services.tracking import UsageTracker
from creative_services.types import LLMTier

__all__ = [
    "AsyncBFAgentLLMBridge",
    "BFAgentLLMBridge",
    "default_client",
    "default_registry",
    "default_tracker",
]

_DJANGO_APP = "creative_services.contrib.django"

_overrides: list[tuple[LLMRegistry, UsageTracker]] = []
"""Pushed and popped by ``creative_services.testing.override_registry`` (innermost last)."""


def _django_ready() -> bool:
    """Django is configured and our app installed (without importing Django if it is not)."""
    if "django" not in sys.modules:
        return False
    from django.apps import apps
    from django.conf import settings

    return bool(settings.configured) and apps.ready and apps.is_installed(_DJANGO_APP)


def default_registry() -> LLMRegistry:
    """``DjangoLLMRegistry()`` when Django is set up with our app, else ``from_env()``.

    Inside ``creative_services.testing.override_registry(...)``: the registry given there.
    """
    if _overrides:
        return _overrides[-1][0]
    if _django_ready():
        from creative_services.contrib.django.registry import DjangoLLMRegistry

        return DjangoLLMRegistry()
    from creative_services.registry import DictRegistry

    return DictRegistry.from_env()


def default_tracker() -> UsageTracker:
    """``DjangoUsageTracker()`` when Django is ready with our app, else the SQLite usage store.

    Inside ``creative_services.testing.override_registry(...)``: the tracker given there.
    """
    if _overrides:
        return _overrides[-1][1]
    if _django_ready():
        from creative_services.contrib.django.tracking import DjangoUsageTracker

        return DjangoUsageTracker()
    from creative_services.tracking import SQLiteUsageTracker

    return SQLiteUsageTracker()


def default_client(
    registry: LLMRegistry | None = None,
    tracker: UsageTracker | None = None,
    client: DynamicLLMClient | None = None,
) -> DynamicLLMClient:
    """``client`` as given, or one over ``registry``/``tracker`` (their defaults when None).

    Raises: TypeError when both a client and parts of one are given.
    """
    if client is not None:
        if registry is not None or tracker is not None:
            raise TypeError("pass either client= or registry=/tracker=, not both")
        return client
    return DynamicLLMClient(
        registry if registry is not None else default_registry(),
        tracker=tracker if tracker is not None else default_tracker(),
    )


class _Bridge:
    def __init__(
        self,
        registry: LLMRegistry | None = None,
        *,
        tracker: UsageTracker | None = None,
        client: DynamicLLMClient | None = None,
    ) -> None:
        self.client = default_client(registry, tracker, client)


class BFAgentLLMBridge(_Bridge):
    """Synchronous bridge for BFAgent: ``generate_text(...) -> str``."""

    def generate_text(
        self,
        prompt: str,
        system_prompt: str | None = None,
        tier: LLMTier | str = LLMTier.STANDARD,
        **kwargs: Any,
    ) -> str:
        """The answer's text ("" for an answer with tool calls only).

        ``kwargs`` are those of :meth:`DynamicLLMClient.generate` (``user_id``, ``max_tokens``,
        ``llm_name``, ...); ``llm_id``/``llm_name`` replace ``tier``.

        Raises: the client's errors (``ConfigurationError``, ``LLMError`` subclasses).
        """
        response = self.client.generate_sync(
            prompt, system_prompt=system_prompt, **_selection(tier, kwargs)
        )
        return response.content or ""


class AsyncBFAgentLLMBridge(_Bridge):
    """Async bridge for BFAgent: ``await generate_text(...) -> str``."""

    async def generate_text(
        self,
        prompt: str,
        system_prompt: str | None = None,
        tier: LLMTier | str = LLMTier.STANDARD,
        **kwargs: Any,
    ) -> str:
        """The answer's text ("" for an answer with tool calls only); see the sync bridge."""
        response = await self.client.generate(
            prompt, system_prompt=system_prompt, **_selection(tier, kwargs)
        )
        return response.content or ""


def _selection(tier: LLMTier | str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("llm_id") is None and kwargs.get("llm_name") is None:
        return {**kwargs, "tier": tier}
    return kwargs
