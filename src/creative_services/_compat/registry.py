"""``creative_services.core.llm_registry`` of the original package, over today's registry/client.

The old semantics stay on the old names: ``get_by_id``/``get_by_name``/``get_by_tier`` return
``None`` when nothing matches, ``from_env()`` with nothing configured gives an empty registry,
``LLMEntry`` takes ``model=`` (and still has ``.model``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from creative_services.client import DynamicLLMClient as _Client
from creative_services.exceptions import ConfigurationError, NoActiveEntryError, UnknownModelError
from creative_services.registry import DictRegistry as _DictRegistry
from creative_services.registry import LLMRegistry as _LLMRegistry
from creative_services.types import LLMEntry as _Entry
from creative_services.types import LLMTier

__all__ = ["DictRegistry", "DynamicLLMClient", "LLMEntry", "LLMRegistry", "LLMTier"]


class LLMEntry(_Entry):
    """An entry built the original way: ``LLMEntry(name=..., provider=..., model=...)``."""

    __slots__ = ()

    def __init__(self, *, model: str | None = None, **fields: Any) -> None:
        if model is not None:
            fields.setdefault("model_name", model)
        super().__init__(**fields)


@runtime_checkable
class LLMRegistry(Protocol):
    """The original registry protocol: five methods, ``None`` when nothing matches."""

    def get_by_id(self, llm_id: int) -> _Entry | None:
        """The entry with this id, or None."""
        ...

    def get_by_name(self, name: str) -> _Entry | None:
        """The entry with this name, or None."""
        ...

    def get_by_tier(self, tier: LLMTier) -> _Entry | None:
        """The first entry of the tier, or None."""
        ...

    def get_default(self) -> _Entry:
        """The default entry."""
        ...

    def list_active(self) -> list[_Entry]:
        """Every active entry."""
        ...


class OriginalRegistry:
    """The original registry methods over one of today's registries (``registry``)."""

    def __init__(self, registry: _LLMRegistry) -> None:
        self.registry = registry

    def __cs_registry__(self) -> _LLMRegistry:
        """The registry ``DynamicLLMClient`` uses (today's, with today's errors)."""
        return self.registry

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.registry!r})"

    def get_by_id(self, llm_id: int) -> _Entry | None:
        """The active entry with this id, or None."""
        try:
            return self.registry.get_by_id(llm_id)
        except UnknownModelError:
            return None

    def get_by_name(self, name: str) -> _Entry | None:
        """The active entry with this name, or None."""
        try:
            return self.registry.get_by_name(name)
        except UnknownModelError:
            return None

    def get_by_tier(self, tier: LLMTier | str) -> _Entry | None:
        """The first active entry of the tier, or None."""
        try:
            return self.registry.get_by_tier(tier)
        except NoActiveEntryError:
            return None

    def get_default(self) -> _Entry:
        """The default entry. Raises: NoActiveEntryError when there is none."""
        return self.registry.get_default()

    def list_active(self) -> list[_Entry]:
        """Every active entry."""
        return self.registry.list_active()


def _entries(entries: Iterable[Any] | Mapping[Any, Any]) -> list[_Entry]:
    items = list(entries.values() if isinstance(entries, Mapping) else entries)
    return [LLMEntry(**dict(e)) if isinstance(e, Mapping) else e for e in items]


class DictRegistry(OriginalRegistry):
    """The original ``DictRegistry``: a list (or dict) of entries; lookups give None on a miss."""

    def __init__(self, entries: Iterable[Any] | Mapping[Any, Any] = (), **kwargs: Any) -> None:
        super().__init__(_DictRegistry(_entries(entries), **kwargs))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> DictRegistry:
        """Today's ``DictRegistry.from_env()``, but empty (not an error) with nothing set."""
        try:
            registry = _DictRegistry.from_env(environ, **kwargs)
        except ConfigurationError:
            registry = _DictRegistry([], **kwargs)
        made = cls.__new__(cls)
        OriginalRegistry.__init__(made, registry)
        return made


class DynamicLLMClient(_Client):
    """Today's client; ``from_env()`` with nothing configured gives an empty registry."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> _Client:
        """A client over ``DictRegistry.from_env()``; empty (calls fail) when nothing is set."""
        return cls(DictRegistry.from_env(environ).registry, **kwargs)
