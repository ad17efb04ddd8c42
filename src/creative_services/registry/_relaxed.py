"""Registries written for the original package: five methods, ``None`` when nothing matched.

``DynamicLLMClient`` accepts such a registry (``get_by_id``, ``get_by_name``, ``get_by_tier``,
``get_default``, ``list_active``, no ``candidates``) through :class:`RelaxedRegistry`, which
reads its active entries and turns its ``None`` answers into today's errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from creative_services.exceptions import ConfigurationError, NoActiveEntryError, UnknownModelError
from creative_services.registry._base import BaseRegistry, LLMRegistry
from creative_services.routing import order_candidates
from creative_services.types import LLMEntry, LLMTier

__all__ = ["ORIGINAL_METHODS", "RelaxedRegistry", "accept_registry"]

ORIGINAL_METHODS = ("get_by_id", "get_by_name", "get_by_tier", "get_default", "list_active")


class RelaxedRegistry(BaseRegistry):
    """Today's registry protocol over a five-method registry of the original package."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"RelaxedRegistry({self.inner!r})"

    def all_entries(self) -> Sequence[LLMEntry]:
        """The inner registry's active entries."""
        return list(self.inner.list_active())

    def get_by_id(self, llm_id: int) -> LLMEntry:
        """The inner registry's entry. Raises: UnknownModelError when it has none."""
        found = self.inner.get_by_id(llm_id)
        if found is None:
            raise UnknownModelError(f"no LLM entry with id {llm_id!r}", key=llm_id)
        return found  # type: ignore[no-any-return]

    def get_by_name(self, name: str) -> LLMEntry:
        """The inner registry's entry. Raises: UnknownModelError when it has none."""
        found = self.inner.get_by_name(name)
        if found is None:
            raise UnknownModelError(f"no LLM entry named {name!r}", key=name)
        return found  # type: ignore[no-any-return]

    def get_default(self) -> LLMEntry:
        """The inner registry's default. Raises: NoActiveEntryError when it has none."""
        found = self.inner.get_default()
        if found is None:
            raise NoActiveEntryError(self.default_tier.value)
        return found  # type: ignore[no-any-return]

    def candidates(self, tier: LLMTier | str) -> list[LLMEntry]:
        """The active entries of the tier; the inner ``get_by_tier`` choice first."""
        tier = LLMTier.parse(tier)
        first = self.inner.get_by_tier(tier)
        ordered = order_candidates(self.all_entries(), tier)
        rest = [e for e in ordered if first is None or e.name != first.name]
        found = ([first] if first is not None else []) + rest
        if not found:
            raise NoActiveEntryError(tier.value)
        return found


def accept_registry(registry: object) -> LLMRegistry:
    """``registry`` as today's protocol; a five-method one is wrapped (with a warning).

    Raises: ConfigurationError for anything else.
    """
    if isinstance(registry, LLMRegistry):
        return registry
    native = getattr(registry, "__cs_registry__", None)
    if callable(native):  # the original package's registries (creative_services._compat)
        return accept_registry(native())
    if all(callable(getattr(registry, m, None)) for m in ORIGINAL_METHODS):
        from creative_services._compat import deprecated

        deprecated(
            "a registry without candidates()",
            "creative_services.BaseRegistry (implement all_entries()) or add candidates(tier)",
            stacklevel=4,
        )
        return RelaxedRegistry(registry)
    raise ConfigurationError(
        f"registry must implement LLMRegistry (get_by_id, get_by_name, get_by_tier, "
        f"get_default, list_active, candidates), got {type(registry).__name__}"
    )
