"""The seed's import path for framework adapters, loaded only when a name is used.

``from creative_services.adapters import DjangoLLMRegistry, DjangoUsageTracker`` works as in the
seed; ``import creative_services.adapters`` alone imports no framework (Django is imported when a
Django name is first looked up, and needs the ``django`` extra).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from creative_services.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from creative_services._compat.bfagent import BFAgentLLMBridge
    from creative_services.bridges import AsyncBFAgentLLMBridge
    from creative_services.contrib.django.budgets import DjangoBudget
    from creative_services.contrib.django.legacy_log import LegacyLogTracker
    from creative_services.contrib.django.registry import DjangoLLMRegistry
    from creative_services.contrib.django.tracking import DjangoUsageTracker
    from creative_services.tier_map import TIER_MAPPING as TIER_MAPPING

# name -> (module that defines it, extra that provides its framework)
_LAZY: dict[str, tuple[str, str]] = {
    # Django (creative_services.contrib.django)
    "DjangoBudget": ("creative_services.contrib.django.budgets", "django"),
    "DjangoLLMRegistry": ("creative_services.contrib.django.registry", "django"),
    "DjangoUsageTracker": ("creative_services.contrib.django.tracking", "django"),
    "LegacyLogTracker": ("creative_services.contrib.django.legacy_log", "django"),
    # BFAgent bridges (core: no framework needed); the sync one keeps the original's methods
    "AsyncBFAgentLLMBridge": ("creative_services.bridges", ""),
    "BFAgentLLMBridge": ("creative_services._compat.bfagent", ""),
    "TIER_MAPPING": ("creative_services.tier_map", ""),
    # the original package's functions (deprecated: they warn once)
    "generate_text": ("creative_services._compat.bfagent", ""),
    "generate_text_async": ("creative_services._compat.bfagent", ""),
}
_DEPRECATED = {
    "generate_text": "BFAgentLLMBridge().generate_text()",
    "generate_text_async": "await AsyncBFAgentLLMBridge().generate_text()",
}

# TIER_MAPPING (creative_services.tier_map), generate_text and generate_text_async are importable
# too, for the original package's code; they are documented there, not here.
__all__ = [
    "AsyncBFAgentLLMBridge",
    "BFAgentLLMBridge",
    "DjangoBudget",
    "DjangoLLMRegistry",
    "DjangoUsageTracker",
    "LegacyLogTracker",
]


def __getattr__(name: str) -> Any:
    try:
        module_name, extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is None or exc.name.startswith("creative_services"):
            raise
        raise MissingDependencyError(
            f"{name} needs {exc.name!r}: pip install 'creative-services[{extra}]'"
        ) from exc
    value = getattr(module, name)
    if name in _DEPRECATED:  # not cached: each use comes here, and the first one warns
        from creative_services._compat import deprecated

        deprecated(f"{__name__}.{name}", _DEPRECATED[name])
        return value
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
