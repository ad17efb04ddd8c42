"""System checks (``manage.py check``; those that read the database need ``--database``).

========================  ===================================================================
``creative_services.E001``  ``CREATIVE_SERVICES_LLM_MODEL`` does not name an installed model
``creative_services.E002``  the LLM model lacks a required field (name, provider, model_name)
``creative_services.E003``  a row cannot make a valid entry (bad field, undecryptable key)
``creative_services.E004``  the installed LiteLLM is a known-bad release
``creative_services.W001``  a tier has entries but none active, or the default tier has none
``creative_services.W002``  an active entry's key variable is not set in this environment
``creative_services.W003``  an active non-local entry has no price and LiteLLM knows none (on a
                            model whose prices cannot be NULL, 0/0 counts as no price)
``creative_services.W004``  the LLM table has no version triggers: every process re-reads it
                            whole each check interval (poll mode)
``creative_services.W008``  a model named ``Llms`` is installed but
                            ``CREATIVE_SERVICES_LLM_MODEL`` is not set (``_legacy.py``)
``creative_services.W007``  this process's registry is stale: its background checks have not
                            succeeded for N s (database stalled or down); the last snapshot is
                            in use. Reads memory only, so it answers while the database hangs
``creative_services.W009``  the usage spool folder holds unwritten records (a process died, or
                            the usage database is down); or it cannot be created
========================  ===================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core import checks

from creative_services.contrib.django._legacy import check_llms_model_setting
from creative_services.contrib.django._rows import (
    build_snapshot,
    columns,
    fetch_rows,
    resolve_model,
    zero_price_is_unknown,
)
from creative_services.contrib.django.conf import conf
from creative_services.exceptions import ConfigurationError, MissingAPIKeyError
from creative_services.types import LLMEntry, LLMTier

__all__ = ["BAD_LITELLM_VERSIONS", "CHECKS", "tags_of"]

TAG = "creative_services"
BAD_LITELLM_VERSIONS = frozenset({"1.82.7", "1.82.8", "1.107.0"})
"""1.82.7 and 1.82.8 shipped a credential stealer; 1.107.0 was withdrawn."""


def check_llm_model(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001/E002: the configured LLM model exists and has the fields the registry reads."""
    label = conf.LLM_MODEL
    try:
        model = resolve_model(label)
    except ConfigurationError as exc:
        return [
            checks.Error(
                str(exc),
                hint="Set CREATIVE_SERVICES_LLM_MODEL to 'app_label.ModelName' of an "
                "installed app, or remove it to use creative_services.LLMModel.",
                id="creative_services.E001",
            )
        ]
    try:
        columns(model)
    except ConfigurationError as exc:
        return [checks.Error(str(exc), obj=model, id="creative_services.E002")]
    return []


def check_litellm_version(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E004: the installed LiteLLM is not a known-bad release."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("litellm")
    except PackageNotFoundError:
        return []
    if installed in BAD_LITELLM_VERSIONS:
        return [
            checks.Error(
                f"litellm {installed} is installed: a known-bad release "
                "(1.82.7 and 1.82.8 shipped a credential stealer)",
                hint="Install the tested range: pip install 'litellm>=1.110.2,<1.111', and "
                "rotate every API key this machine has seen.",
                id="creative_services.E004",
            )
        ]
    return []


def check_entries(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E003/W001-W004: the rows of the LLM table, read from each checked database."""
    if not databases:
        return []
    from django.db import DatabaseError, router

    try:
        model = resolve_model(conf.LLM_MODEL)
        cols = columns(model)
    except ConfigurationError:
        return []  # E001/E002 report it
    alias = router.db_for_read(model)
    if alias not in databases:
        return []
    zero = zero_price_is_unknown(model)
    try:
        snapshot = build_snapshot(cols, fetch_rows(model, alias), zero_is_unknown=zero)
    except DatabaseError:
        return []  # not migrated yet (``migrate`` runs the checks first)
    messages: list[checks.CheckMessage] = [
        checks.Error(problem, obj=model, id="creative_services.E003")
        for problem in snapshot.problems
    ]
    messages += _tier_warnings(snapshot.entries, model)
    active = [e for e in snapshot.entries if e.is_active]
    messages += _key_warnings(active, model)
    messages += _price_warnings(active, model, zero)
    messages += _trigger_warnings(model, alias)
    return messages


def _tier_warnings(entries: Sequence[LLMEntry], model: Any) -> list[checks.CheckMessage]:
    default = LLMTier.STANDARD
    out: list[checks.CheckMessage] = []
    for tier in LLMTier:
        rows = [e for e in entries if e.tier is tier]
        if any(e.is_active for e in rows) or (not rows and tier is not default):
            continue
        why = "has no entry" if not rows else f"has {len(rows)} entries, none active"
        out.append(
            checks.Warning(
                f"tier {tier.value!r} {why}: calls for it raise NoActiveEntryError",
                hint=f"Add or activate an entry with tier={tier.value!r}.",
                obj=model,
                id="creative_services.W001",
            )
        )
    return out


def _key_warnings(active: Iterable[LLMEntry], model: Any) -> list[checks.CheckMessage]:
    from creative_services._providers import resolve_api_key

    out: list[checks.CheckMessage] = []
    for entry in active:
        try:
            resolve_api_key(entry, os.environ)
        except MissingAPIKeyError as exc:
            out.append(
                checks.Warning(
                    str(exc),
                    hint="Set the variable in this environment, or store the key on the entry.",
                    obj=model,
                    id="creative_services.W002",
                )
            )
    return out


def _price_warnings(
    active: Iterable[LLMEntry], model: Any, zero_is_unknown: bool
) -> list[checks.CheckMessage]:
    unpriced = [
        e
        for e in active
        if e.tier is not LLMTier.LOCAL
        and (e.cost_per_1k_input is None or e.cost_per_1k_output is None)
    ]
    if not unpriced:
        return []
    from creative_services import _litellm

    hint = "Set cost_per_1k_input and cost_per_1k_output on the entry."
    if zero_is_unknown:
        hint += (
            f" {model._meta.label} cannot store an empty price, so 0 for both reads as no "
            "price; a free model belongs in the 'local' tier."
        )
    return [
        checks.Warning(
            f"entry {e.name!r} ({e.provider}/{e.model_name}) has no price and LiteLLM's price "
            "map does not know it: its calls will have cost None",
            hint=hint,
            obj=model,
            id="creative_services.W003",
        )
        for e in unpriced
        if _litellm.map_prices(e.provider, e.model_name) is None
    ]


def _trigger_warnings(model: Any, alias: str) -> list[checks.CheckMessage]:
    from django.db import DatabaseError, connections

    from creative_services.contrib.django.triggers import has_triggers, install_sql

    connection = connections[alias]
    table = model._meta.db_table
    if not install_sql(connection, table):
        return []  # a database without trigger support: polling is the only way
    try:
        if has_triggers(connection, table):
            return []
    except DatabaseError:
        return []
    label = model._meta.label
    return [
        checks.Warning(
            f"{label} has no registry version triggers: every process re-reads the whole "
            f"table every {conf.REGISTRY_CHECK_INTERVAL:g} s "
            "(CREATIVE_SERVICES_REGISTRY_CHECK_INTERVAL) to notice changes",
            hint=f"Add a migration to the {model._meta.app_label!r} app with operations = "
            f'[InstallVersionTriggers("{label}")] (from creative_services.contrib.django.'
            'triggers), depending on ("creative_services", "0001_initial"); the processes '
            "then read one version row per interval instead.",
            obj=model,
            id="creative_services.W004",
        )
    ]


def check_registry_fresh(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W007: the registry snapshots of this process are fresh (memory only, never a query)."""
    from creative_services.contrib.django import _watch

    return [
        checks.Warning(
            f"the LLM registry ({source.model._meta.label} on database {source.alias!r}) is "
            f"stale for {age:.0f} s: "
            + ("the last snapshot is in use" if source.snapshot else "nothing is loaded")
            + (f" ({source.error!r})" if source.error else ""),
            hint="The registry's background check cannot read the database: see the "
            "llm_registry_stale log lines; CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT bounds "
            "each check.",
            obj=source.model,
            id="creative_services.W007",
        )
        for source, age in _watch.stale_sources()
    ]


def check_usage_spool(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W009: the batched usage tracker's spool folder is usable and holds no unwritten records
    (reads the local files only, never the database)."""
    from creative_services.contrib.django._spool import spool_files

    directory = conf.USAGE_SPOOL
    if directory is None:
        return []
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        found = spool_files(directory)
    except OSError as exc:
        return [checks.Warning(
            f"the usage spool folder {directory} cannot be used: {exc}",
            hint="Set CREATIVE_SERVICES_USAGE_SPOOL to a writable local folder; without it "
            "DjangoUsageTracker(batch=True).record() raises.",
            id="creative_services.W009",
        )]  # fmt: skip
    waiting = [(path, rows, alive) for path, rows, alive in found if rows]
    if not waiting:
        return []
    dead = sum(rows for _, rows, alive in waiting if not alive)
    total = sum(rows for _, rows, _ in waiting)
    return [checks.Warning(
        f"the usage spool {directory} holds {total} unwritten usage records in "
        f"{len(waiting)} files ({dead} left by processes that died)",
        hint="A batched DjangoUsageTracker writes them when its database answers: dead "
        "processes' records on its first record() or flush(). Many records in live files: "
        "the usage database is down or too slow (see the usage_write_retry log lines).",
        id="creative_services.W009",
    )]  # fmt: skip


CHECKS: tuple[Callable[..., list[checks.CheckMessage]], ...] = (
    check_llm_model,
    check_litellm_version,
    check_entries,
    check_llms_model_setting,
    check_registry_fresh,
    check_usage_spool,
)


def tags_of(check: Callable[..., Any]) -> tuple[str, ...]:
    """The tags a check is registered with (``database`` for those that read tables)."""
    return (TAG, checks.Tags.database) if check is check_entries else (TAG,)
