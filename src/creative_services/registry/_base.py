"""The registry protocol and the selection logic every registry shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from creative_services.exceptions import NoActiveEntryError, UnknownModelError
from creative_services.routing import order_candidates
from creative_services.types import LLMEntry, LLMTier

__all__ = ["BaseRegistry", "LLMRegistry"]


@runtime_checkable
class LLMRegistry(Protocol):
    """Where entries come from: a dict, the environment, a file or a database."""

    def get_by_id(self, llm_id: int) -> LLMEntry:
        """The active entry with this id. Raises: UnknownModelError."""
        ...

    def get_by_name(self, name: str) -> LLMEntry:
        """The active entry with this name. Raises: UnknownModelError."""
        ...

    def get_by_tier(self, tier: LLMTier | str) -> LLMEntry:
        """The first candidate of the tier (cheapest by default). Raises: NoActiveEntryError."""
        ...

    def get_default(self) -> LLMEntry:
        """The entry used when a call names no tier or model. Raises: NoActiveEntryError."""
        ...

    def list_active(self) -> list[LLMEntry]:
        """Every active entry, in registry order."""
        ...

    def candidates(self, tier: LLMTier | str) -> list[LLMEntry]:
        """The active entries of a tier in fallback order. Raises: NoActiveEntryError."""
        ...


class BaseRegistry(ABC):
    """Implements the whole protocol over one method, :meth:`all_entries` (a snapshot)."""

    default_tier: LLMTier = LLMTier.STANDARD

    @abstractmethod
    def all_entries(self) -> Sequence[LLMEntry]:
        """Every entry, active or not, in registry order."""

    def get_by_id(self, llm_id: int) -> LLMEntry:
        """The active entry with this id. Raises: UnknownModelError."""
        for entry in self.all_entries():
            if entry.id == llm_id:
                return self._active(entry)
        raise UnknownModelError(
            f"no LLM entry with id {llm_id!r}; known ids: {self._known('id')}", key=llm_id
        )

    def get_by_name(self, name: str) -> LLMEntry:
        """The active entry with this name. Raises: UnknownModelError."""
        for entry in self.all_entries():
            if entry.name == name:
                return self._active(entry)
        raise UnknownModelError(
            f"no LLM entry named {name!r}; known names: {self._known('name')}", key=name
        )

    def get_by_tier(self, tier: LLMTier | str) -> LLMEntry:
        """The first candidate of the tier (cheapest by default). Raises: NoActiveEntryError."""
        return self.candidates(tier)[0]

    def get_default(self) -> LLMEntry:
        """The first candidate of :attr:`default_tier`, else of any tier.

        Raises: NoActiveEntryError.
        """
        entries = self.all_entries()
        for tier in (self.default_tier, *LLMTier):
            found = order_candidates(entries, tier)
            if found:
                return found[0]
        raise NoActiveEntryError(self.default_tier.value)

    def list_active(self) -> list[LLMEntry]:
        """Every active entry, in registry order."""
        return [e for e in self.all_entries() if e.is_active]

    def candidates(self, tier: LLMTier | str) -> list[LLMEntry]:
        """The active entries of a tier in fallback order. Raises: NoActiveEntryError."""
        tier = LLMTier.parse(tier)
        found = order_candidates(self.all_entries(), tier)
        if not found:
            raise NoActiveEntryError(tier.value)
        return found

    @staticmethod
    def _active(entry: LLMEntry) -> LLMEntry:
        if not entry.is_active:
            raise UnknownModelError(
                f"LLM entry {entry.name!r} (id {entry.id}) is disabled (is_active=False); "
                f"activate it or choose another entry",
                key=entry.name,
            )
        return entry

    def _known(self, attr: str) -> str:
        values = [repr(getattr(e, attr)) for e in self.all_entries()]
        return ", ".join(values[:20]) + (" ..." if len(values) > 20 else "") if values else "none"
