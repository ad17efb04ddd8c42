"""Rows of an LLM table (the shipped model or any ``Llms``-shaped one) to :class:`LLMEntry`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from creative_services.contrib.django.crypto import UndecryptableKey
from creative_services.exceptions import ConfigurationError, InvalidEntryError
from creative_services.types import LLMEntry

__all__ = ["Snapshot", "build_snapshot", "columns", "fetch_rows", "resolve_model"]

SEED_FIELDS = (
    "name", "provider", "model_name", "tier", "api_key", "api_endpoint", "max_tokens",
    "temperature", "cost_per_1k_input", "cost_per_1k_output", "is_active",
)  # fmt: skip
REQUIRED_FIELDS = ("name", "provider", "model_name")
OPTIONAL_FIELDS = ("priority", "api_key_env")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The usable entries of a table at one moment, and why the other rows are not usable."""

    entries: tuple[LLMEntry, ...] = ()
    problems: tuple[str, ...] = ()
    by_id: dict[int, LLMEntry] = field(default_factory=dict)


def resolve_model(label: Any) -> Any:
    """The model class for ``"app_label.Model"`` (or a model class). Raises: ConfigurationError."""
    if not isinstance(label, str):
        return label
    from django.apps import apps

    try:
        return apps.get_model(label, require_ready=False)
    except (LookupError, ValueError) as exc:
        raise ConfigurationError(
            f"CREATIVE_SERVICES_LLM_MODEL = {label!r} does not name an installed model "
            f"('app_label.ModelName'): {exc}"
        ) from None


def columns(model: Any) -> tuple[str, ...]:
    """The fields to read from ``model``: ``pk``, then the seed's and optional ones it has.

    Raises: ConfigurationError when a required field (name, provider, model_name) is missing.
    """
    names = {f.name for f in model._meta.concrete_fields}
    missing = [f for f in REQUIRED_FIELDS if f not in names]
    if missing:
        raise ConfigurationError(
            f"LLM model {model._meta.label} lacks the field(s) {', '.join(missing)}; it needs "
            f"at least {', '.join(REQUIRED_FIELDS)} (and should have {', '.join(SEED_FIELDS)})"
        )
    return ("pk", *(f for f in (*SEED_FIELDS, *OPTIONAL_FIELDS) if f in names))


def fetch_rows(model: Any, alias: str) -> list[tuple[Any, ...]]:
    """Every row of ``model`` on database ``alias``, as tuples in :func:`columns` order."""
    cols = columns(model)
    order = ("priority", "pk") if "priority" in cols else ("pk",)
    return list(model._base_manager.using(alias).order_by(*order).values_list(*cols))


def entry_from_row(row: dict[str, Any]) -> LLMEntry:
    """One entry from one row (a dict of :func:`columns`). Raises: InvalidEntryError."""
    name = str(row["name"])
    key = row.get("api_key")
    if isinstance(key, UndecryptableKey):  # an empty string: test it before any ``or``
        raise InvalidEntryError(
            "api_key",
            "cannot be decrypted with SECRET_KEY, SECRET_KEY_FALLBACKS or "
            "CREATIVE_SERVICES_ENCRYPTION_KEY: set the old secret as a fallback or re-enter "
            "the key",
            entry=name,
        )
    pk = row["pk"]
    temperature = row.get("temperature")
    try:
        return LLMEntry(
            id=pk if isinstance(pk, int) and not isinstance(pk, bool) else None,
            name=name,
            provider=row["provider"],
            model_name=row["model_name"],
            tier=row.get("tier") or "standard",
            api_key=str(key or ""),
            api_endpoint=row.get("api_endpoint") or None,
            max_tokens=int(row.get("max_tokens") or 4096),
            temperature=0.7 if temperature is None else float(temperature),
            cost_per_1k_input=row.get("cost_per_1k_input"),
            cost_per_1k_output=row.get("cost_per_1k_output"),
            is_active=bool(row.get("is_active", True)),
            priority=int(row.get("priority") or 0),
            api_key_env=row.get("api_key_env") or None,
        )
    except InvalidEntryError as exc:
        if exc.entry:
            raise
        raise InvalidEntryError(exc.field, exc.message.split(" ", 2)[-1], entry=name) from None


def build_snapshot(cols: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> Snapshot:
    """Entries from rows; a bad row is left out and described in ``problems``."""
    entries: list[LLMEntry] = []
    problems: list[str] = []
    for values in rows:
        row = dict(zip(cols, values, strict=True))
        try:
            entries.append(entry_from_row(row))
        except (InvalidEntryError, TypeError, ValueError) as exc:
            problems.append(f"row pk={row['pk']!r}: {exc}")
    return Snapshot(
        entries=tuple(entries),
        problems=tuple(problems),
        by_id={e.id: e for e in entries if e.id is not None},
    )
