"""``creative_services.adapters.django_adapter`` of the original package, over contrib.django.

``DjangoLLMRegistry(model_class=Llms)`` reads BFAgent's ``llms`` table as it is (``llm_name``,
one price column, no tier column: see docs/django.rst); its lookups give None on a miss.
``DjangoUsageTracker(model_class=LLMUsageLog, llm_model_class=Llms)`` writes the original
log table.
"""

from __future__ import annotations

from typing import Any

from creative_services._compat.registry import OriginalRegistry
from creative_services.tier_map import TIER_MAPPING

__all__ = ["TIER_MAPPING", "DjangoLLMRegistry", "DjangoUsageTracker"]


class DjangoLLMRegistry(OriginalRegistry):
    """The original Django registry: ``DjangoLLMRegistry(model_class=Llms)``."""

    def __init__(self, model_class: Any = None, **kwargs: Any) -> None:
        from creative_services.contrib.django.registry import DjangoLLMRegistry as Registry

        super().__init__(Registry(model_class, **kwargs))


def DjangoUsageTracker(  # the original name of a class
    model_class: Any = None, llm_model_class: Any = None, **kwargs: Any
) -> Any:
    """The original tracker: over the log table ``model_class`` when given, else ``LLMUsage``."""
    if model_class is None:
        from creative_services.contrib.django.tracking import DjangoUsageTracker as Tracker

        return Tracker(**kwargs)
    from creative_services.contrib.django.legacy_log import LegacyLogTracker

    return LegacyLogTracker(model_class, llm_model_class, **kwargs)
