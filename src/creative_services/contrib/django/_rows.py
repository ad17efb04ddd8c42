"""Rows of an LLM table (the shipped model or any ``Llms``-shaped one) to :class:`LLMEntry`.

On a model whose price fields cannot hold NULL (the seed's ``Llms`` defaults them to 0), a row
priced 0 for both input and output outside the ``local`` tier is read as "price unknown"
(``None``), not as free: 0 is what a row gets when nobody entered a price. A ``local`` row stays 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from creative_services.contrib.django._legacy import fetch, plan_for
from creative_services.contrib.django.crypto import UndecryptableKey
from creative_services.exceptions import ConfigurationError, InvalidEntryError
from creative_services.types import LLMEntry, LLMTier

__all__ = [
    "Snapshot",
    "build_snapshot",
    "columns",
    "fetch_rows",
    "resolve_model",
    "zero_price_is_unknown",
]

SEED_FIELDS = (
    "name", "provider", "model_name", "tier", "api_key", "api_endpoint", "max_tokens",
    "temperature", "cost_per_1k_input", "cost_per_1k_output", "is_active",
)  # fmt: skip
PRICE_FIELDS = ("cost_per_1k_input", "cost_per_1k_output")
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
    plan = plan_for(model, (*SEED_FIELDS, *OPTIONAL_FIELDS))  # other shapes: _legacy.py
    names = {*plan.sources, *(("tier",) if plan.derive_tier else ())}
    missing = [f for f in REQUIRED_FIELDS if f not in names]
    if missing:
        raise ConfigurationError(
            f"LLM model {model._meta.label} lacks the field(s) {', '.join(missing)}; it needs "
            f"at least {', '.join(REQUIRED_FIELDS)} (and should have {', '.join(SEED_FIELDS)})"
        )
    return ("pk", *(f for f in (*SEED_FIELDS, *OPTIONAL_FIELDS) if f in names))


def zero_price_is_unknown(model: Any) -> bool:
    """Whether 0/0 prices on ``model`` mean "unknown": a price field of it cannot hold NULL."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    sources = plan_for(model, PRICE_FIELDS).sources
    return any(name in sources and not fields[sources[name]].null for name in PRICE_FIELDS)


def fetch_rows(model: Any, alias: str) -> list[tuple[Any, ...]]:
    """Every row of ``model`` on database ``alias``, as tuples in :func:`columns` order."""
    return fetch(model, alias, columns(model))


def entry_from_row(row: dict[str, Any], *, zero_is_unknown: bool = False) -> LLMEntry:
    """One entry from one row (a dict of :func:`columns`). Raises: InvalidEntryError.

    ``zero_is_unknown`` (see :func:`zero_price_is_unknown`): prices of 0/0 outside the ``local``
    tier become ``None``.
    """
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
        entry = LLMEntry(
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
    if (
        zero_is_unknown
        and entry.tier is not LLMTier.LOCAL
        and entry.cost_per_1k_input == 0
        and entry.cost_per_1k_output == 0
    ):
        entry = replace(entry, cost_per_1k_input=None, cost_per_1k_output=None)
    return entry


def build_snapshot(
    cols: Sequence[str], rows: Sequence[tuple[Any, ...]], *, zero_is_unknown: bool = False
) -> Snapshot:
    """Entries from rows; a bad row is left out and described in ``problems``."""
    entries: list[LLMEntry] = []
    problems: list[str] = []
    for values in rows:
        row = dict(zip(cols, values, strict=True))
        try:
            entries.append(entry_from_row(row, zero_is_unknown=zero_is_unknown))
        except (InvalidEntryError, TypeError, ValueError) as exc:
            problems.append(f"row pk={row['pk']!r}: {exc}")
    return Snapshot(
        entries=tuple(entries),
        problems=tuple(problems),
        by_id={e.id: e for e in entries if e.id is not None},
    )
