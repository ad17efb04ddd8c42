"""LLM tables of another shape (BFAgent's ``llms``), read as they are, without migrations.

=======================================  ==========================================================
``CREATIVE_SERVICES_LLM_FIELDS``         ``{}``: our field -> the model's field, e.g.
                                         ``{"model_name": "llm_name"}``. Without it, a field the
                                         model lacks is looked up under the original package's
                                         names: ``model_name`` <- ``llm_name`` or ``model``, both
                                         prices <- ``cost_per_1k_tokens`` (one price per 1k tokens,
                                         input and output alike)
``CREATIVE_SERVICES_LLM_TIERS``          ``None``: on a model without a tier field, how a row's
                                         tier is derived: a mapping model name -> tier, or
                                         ``rule(model_name, provider) -> tier | None`` (or its
                                         dotted path). Default:
                                         :data:`creative_services.tier_map.TIER_MAPPING`
``CREATIVE_SERVICES_LLM_DEFAULT_TIER``   ``"standard"``: the tier of a row the rule does not map
=======================================  ==========================================================

Also: W008 and the error of an empty shipped table while a model named ``Llms`` is installed
and ``CREATIVE_SERVICES_LLM_MODEL`` is not set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from creative_services.contrib.django.conf import conf
from creative_services.exceptions import ConfigurationError, InvalidTierError
from creative_services.tier_map import TierRule, derive_tier

__all__ = [
    "ALIASES",
    "Plan",
    "check_llms_model_setting",
    "fetch",
    "plan_for",
    "refuse_unconfigured_empty",
    "unconfigured_llms_model",
]

ALIASES: Mapping[str, tuple[str, ...]] = {
    "model_name": ("llm_name", "model"),
    "cost_per_1k_input": ("cost_per_1k_tokens",),
    "cost_per_1k_output": ("cost_per_1k_tokens",),
}
"""The original package's names of our fields, tried when a model lacks ours."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How to read one model: our field -> its field; whether the tier is derived."""

    sources: Mapping[str, str]
    derive_tier: bool
    rule: TierRule | None
    default_tier: str


def _rule() -> TierRule | None:
    rule = conf._get("LLM_TIERS", None)
    if isinstance(rule, str):
        from django.utils.module_loading import import_string

        try:
            rule = import_string(rule)
        except ImportError as exc:
            raise ConfigurationError(f"CREATIVE_SERVICES_LLM_TIERS = {rule!r}: {exc}") from None
    if rule is not None and not callable(rule) and not isinstance(rule, Mapping):
        raise ConfigurationError(
            "CREATIVE_SERVICES_LLM_TIERS must be a mapping model name -> tier or a callable "
            f"(model_name, provider) -> tier, got {type(rule).__name__}"
        )
    return rule  # type: ignore[no-any-return]


def plan_for(model: Any, wanted: Sequence[str]) -> Plan:
    """The reading plan of ``model`` for our fields ``wanted``. Raises: ConfigurationError."""
    names = {f.name for f in model._meta.concrete_fields}
    explicit = conf._get("LLM_FIELDS", None) or {}
    if not isinstance(explicit, Mapping):
        raise ConfigurationError("CREATIVE_SERVICES_LLM_FIELDS must be a dict: ours -> theirs")
    unknown = {k: v for k, v in explicit.items() if v not in names}
    if unknown:
        raise ConfigurationError(
            f"CREATIVE_SERVICES_LLM_FIELDS maps to fields {model._meta.label} lacks: {unknown}"
        )
    sources: dict[str, str] = {}
    for ours in wanted:
        if ours in explicit:
            sources[ours] = explicit[ours]
        elif ours in names:
            sources[ours] = ours
        else:
            alias = next((a for a in ALIASES.get(ours, ()) if a in names), None)
            if alias is not None:
                sources[ours] = alias
    derive = "tier" in wanted and "tier" not in sources
    default = str(conf._get("LLM_DEFAULT_TIER", "standard"))
    return Plan(sources, derive, _rule() if derive else None, default)


def _tier(plan: Plan, model_name: Any, provider: Any) -> str:
    try:
        return derive_tier(str(model_name or ""), str(provider or ""), plan.rule, plan.default_tier)
    except InvalidTierError as exc:
        return str(exc.value)  # the row is then reported as invalid, naming the bad tier


def fetch(model: Any, alias: str, cols: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every row of ``model`` as tuples in ``cols`` order (our names; a derived tier filled)."""
    plan = plan_for(model, cols[1:])
    read = list(dict.fromkeys(plan.sources[c] for c in cols[1:] if c in plan.sources))
    at = {name: i for i, name in enumerate(read, start=1)}
    priority = plan.sources.get("priority")
    order = (priority, "pk") if priority else ("pk",)
    raw = model._base_manager.using(alias).order_by(*order).values_list("pk", *read)
    pick = [at[plan.sources[c]] if c in plan.sources else -1 for c in cols[1:]]
    name_at, provider_at = (
        at.get(plan.sources.get("model_name", "")),
        at.get(plan.sources.get("provider", "")),
    )
    rows = []
    for values in raw:
        row = [values[0]]
        for i in pick:
            if i >= 0:
                row.append(values[i])
            else:
                model_name = values[name_at] if name_at else ""
                row.append(_tier(plan, model_name, values[provider_at] if provider_at else ""))
        rows.append(tuple(row))
    return rows


def unconfigured_llms_model() -> str | None:
    """``app.Llms`` of an installed model named ``Llms`` when the setting is not set, else None."""
    from django.apps import apps
    from django.conf import settings

    if hasattr(settings, "CREATIVE_SERVICES_LLM_MODEL"):
        return None
    found = sorted(m._meta.label for m in apps.get_models() if m.__name__ == "Llms")
    return found[0] if found else None


def _advice(label: str) -> str:
    return (
        f"add CREATIVE_SERVICES_LLM_MODEL = {label!r} to your settings to read that table "
        "(or CREATIVE_SERVICES_LLM_MODEL = 'creative_services.LLMModel' to keep the shipped one)"
    )


def refuse_unconfigured_empty() -> None:
    """Called on an empty shipped table. Raises: ConfigurationError naming the setting to add."""
    label = unconfigured_llms_model()
    if label is not None:
        raise ConfigurationError(
            f"the shipped LLM table (creative_services.LLMModel) is empty and {label} is "
            f"installed: {_advice(label)}"
        )


def check_llms_model_setting(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """W008: a model named ``Llms`` is installed and ``CREATIVE_SERVICES_LLM_MODEL`` is unset."""
    from django.core import checks

    label = unconfigured_llms_model()
    if label is None:
        return []
    return [
        checks.Warning(
            f"{label} is installed but CREATIVE_SERVICES_LLM_MODEL is not set: the registry "
            "reads the shipped creative_services.LLMModel table, not it",
            hint=_advice(label)[0].upper() + _advice(label)[1:] + ".",
            id="creative_services.W008",
        )
    ]
