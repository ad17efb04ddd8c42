"""DictRegistry: entries held in memory, built from dicts, a TOML/JSON file or the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from creative_services._providers import PROVIDERS, ZERO_CONFIG_ORDER
from creative_services._secrets import remember
from creative_services.exceptions import ConfigurationError, InvalidEntryError
from creative_services.registry._base import BaseRegistry
from creative_services.types import LLMEntry, LLMTier

__all__ = ["MODELS_ENV", "DictRegistry"]

MODELS_ENV = "CREATIVE_SERVICES_MODELS"
_FIELDS = frozenset(f.name for f in fields(LLMEntry))


class DictRegistry(BaseRegistry):
    """A registry over a fixed list of entries.

    Entries without an ``id`` get the next free integer, starting at 1. Names and ids must be
    unique. Raises: InvalidEntryError.
    """

    def __init__(self, entries: Iterable[LLMEntry], *, default_tier: LLMTier | str = "standard"):
        self.default_tier = LLMTier.parse(default_tier)
        given = list(entries)
        used = {e.id for e in given if e.id is not None}
        next_id = 1
        resolved: list[LLMEntry] = []
        names: set[str] = set()
        for entry in given:
            if not isinstance(entry, LLMEntry):
                raise InvalidEntryError("entry", f"must be an LLMEntry, got {type(entry).__name__}")
            # LLMEntry does not check these two; a wrong type would break ordering (TypeError)
            if isinstance(entry.priority, bool) or not isinstance(entry.priority, int):
                raise InvalidEntryError(
                    "priority", f"must be an integer, got {entry.priority!r}", entry=entry.name
                )
            if not isinstance(entry.is_active, int):  # "no" would count as active
                raise InvalidEntryError(
                    "is_active", f"must be True or False, got {entry.is_active!r}", entry=entry.name
                )
            if entry.id is None:
                while next_id in used:
                    next_id += 1
                used.add(next_id)
                entry = replace(entry, id=next_id)
            if entry.name in names:
                raise InvalidEntryError("name", "is used by two entries", entry=entry.name)
            names.add(entry.name)
            resolved.append(entry)
        ids = [e.id for e in resolved]
        if len(set(ids)) != len(ids):
            raise InvalidEntryError("id", f"values must be unique, got {ids}")
        self._entries: tuple[LLMEntry, ...] = tuple(resolved)

    def all_entries(self) -> Sequence[LLMEntry]:
        """Every entry, active or not, in registry order."""
        return self._entries

    def __repr__(self) -> str:
        return f"DictRegistry({[e.name for e in self._entries]!r})"

    @classmethod
    def from_dict(cls, items: Iterable[Mapping[str, Any]], **kwargs: Any) -> DictRegistry:
        """Build from dicts whose keys are :class:`LLMEntry` field names.

        Raises: InvalidEntryError (naming the entry and field) for unknown keys or bad values.
        """
        entries = []
        items = list(items)
        for item in items:  # a bad row's error must not show any row's key (see _secrets.py)
            if isinstance(item, Mapping):
                remember(item.get("api_key"))
        for position, item in enumerate(items, start=1):
            if not isinstance(item, Mapping):  # its values are not shown: any may be a key
                raise InvalidEntryError(
                    "entry", f"#{position} must be a mapping, got {type(item).__name__}"
                )
            label = str(item.get("name") or f"#{position}")
            unknown = sorted(set(item) - _FIELDS)
            if unknown:
                raise InvalidEntryError(
                    ", ".join(unknown),
                    f"is not an entry field; valid fields: {', '.join(sorted(_FIELDS))}",
                    entry=label,
                )
            missing = [k for k in ("name", "provider", "model_name") if not item.get(k)]
            if missing:
                raise InvalidEntryError(", ".join(missing), "is required", entry=label)
            try:
                entries.append(LLMEntry(**item))
            except InvalidEntryError as exc:
                raise InvalidEntryError(exc.field, _problem(exc), entry=label) from None
            except (TypeError, ValueError) as exc:  # e.g. extra_params not a mapping
                raise InvalidEntryError("entry", str(exc), entry=label) from None
        return cls(entries, **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> DictRegistry:
        """Build from a TOML (``[[models]]`` tables) or JSON (a list, or ``{"models": [...]}``)
        file. Raises: ConfigurationError when the file is missing or unreadable."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read registry file {str(p)!r}: {exc}") from None
        try:
            if p.suffix.lower() == ".toml":
                import tomllib

                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"registry file {str(p)!r} is not valid: {exc}") from None
        return cls.from_dict(_models_list(data, str(p)), **kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> DictRegistry:
        """Build from the environment, read now (never at import).

        ``CREATIVE_SERVICES_MODELS`` holds JSON or the path of a TOML/JSON file. Without it,
        every provider whose key is set (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...) gives
        its default model for each tier it serves (see docs/registry.rst); ``<PROVIDER>_BASE_URL``
        variables point a provider at a proxy or local server. The key itself is read when a
        call is made. Raises: ConfigurationError when nothing is configured.
        """
        env = os.environ if environ is None else environ
        explicit = env.get(MODELS_ENV, "").strip()
        if explicit:
            if explicit[0] in "[{":
                try:
                    data = json.loads(explicit)
                except ValueError as exc:
                    raise ConfigurationError(f"{MODELS_ENV} is not valid JSON: {exc}") from None
                return cls.from_dict(_models_list(data, MODELS_ENV), **kwargs)
            return cls.from_file(explicit, **kwargs)
        entries = zero_config_entries(env)
        if not entries:
            raise ConfigurationError(
                f"no LLM configured: set {MODELS_ENV} (JSON or a TOML/JSON file path) or a "
                f"provider key such as OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, "
                f"MISTRAL_API_KEY, GROQ_API_KEY, OPENROUTER_API_KEY, or OLLAMA_HOST"
            )
        return cls(entries, **kwargs)


def zero_config_entries(env: Mapping[str, str]) -> list[LLMEntry]:
    """One entry per (available provider, tier it serves), providers in preference order."""
    entries = []
    for rank, name in enumerate(ZERO_CONFIG_ORDER):
        spec = PROVIDERS[name]
        present = [v for v in (spec.presence_envs or spec.key_envs) if env.get(v)]
        if not present:
            continue
        base = next((env[v] for v in spec.base_url_envs if env.get(v)), None)
        key_env = None if spec.key_optional else present[0]
        for tier, model in spec.tier_models.items():
            entries.append(
                LLMEntry(
                    name=f"{name}-{tier.value}",
                    provider=name,
                    model_name=model,
                    tier=tier,
                    api_endpoint=base,
                    api_key_env=key_env,
                    priority=rank,
                )
            )
    return entries


def _models_list(data: Any, where: str) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping):
        data = data.get("models")
    if not isinstance(data, list):
        raise ConfigurationError(f"{where}: expected a list of models or {{'models': [...]}}")
    return data


def _problem(exc: InvalidEntryError) -> str:
    prefix = f"field {exc.field!r} "
    return exc.message[len(prefix) :] if exc.message.startswith(prefix) else exc.message
