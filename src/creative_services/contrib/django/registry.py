"""DjangoLLMRegistry: the registry read from a Django model, with zero queries per lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from django.conf import settings

from creative_services.contrib.django import _watch
from creative_services.contrib.django._legacy import refuse_unconfigured_empty
from creative_services.contrib.django._rows import resolve_model
from creative_services.contrib.django.conf import conf
from creative_services.registry import BaseRegistry
from creative_services.types import LLMEntry, LLMTier

__all__ = ["DjangoLLMRegistry", "stop_registry_watcher"]


class DjangoLLMRegistry(BaseRegistry):
    """The same interface as :class:`~creative_services.DictRegistry`, over a Django model.

    ``model`` is a model class or ``"app_label.Model"``; by default the
    ``CREATIVE_SERVICES_LLM_MODEL`` setting (the shipped ``creative_services.LLMModel``), read
    at each lookup. ``using`` is the database alias (default: the router's read database).

    Lookups read a process-wide in-memory snapshot and make no query. A background thread keeps
    it fresh: a change made anywhere (admin, ``.save()``, ``QuerySet.update()``,
    ``bulk_create()``, raw SQL, another process) is used within
    ``CREATIVE_SERVICES_REGISTRY_CHECK_INTERVAL`` (0.5 s) plus one query; this process's own
    ``.save()``/``.delete()`` is used as soon as its transaction commits (a sync lookup waits
    for that reload; a lookup on a running event loop never waits and uses the previous
    snapshot). The first lookup of a process waits for the table to be read
    (``await registry.arefresh()`` does it without blocking an event loop). Rows that cannot
    make a valid entry are left out and logged.
    Raises: ConfigurationError when the model is unknown or the table cannot be read at all.
    """

    def __init__(
        self,
        model: str | type[Any] | None = None,
        *,
        using: str | None = None,
        default_tier: LLMTier | str = "standard",
    ) -> None:
        self.default_tier = LLMTier.parse(default_tier)
        self._model = model
        self._using = using
        self._cached: tuple[Any, int, _watch.Source] | None = None

    def __repr__(self) -> str:
        model = self._model if self._model is not None else "CREATIVE_SERVICES_LLM_MODEL"
        return f"DjangoLLMRegistry({model!r}, using={self._using!r})"

    def _source(self) -> _watch.Source:
        # override_settings swaps settings._wrapped: while it is the same object, so is the
        # setting, and reading it (~4 µs through LazySettings) can be skipped.
        wrapped = settings._wrapped
        cached = self._cached
        if cached is not None and cached[0] is wrapped and cached[1] == _watch.epoch:
            return cached[2]
        model = resolve_model(self._model if self._model is not None else conf.LLM_MODEL)
        if self._using is not None:
            alias = self._using
        else:
            from django.db import router

            alias = router.db_for_read(model)
        source = _watch.source_for(model, alias)
        self._cached = (wrapped, _watch.epoch, source)
        return source

    def all_entries(self) -> Sequence[LLMEntry]:
        """Every usable entry, active or not, in table order (priority, then primary key).

        Raises: ConfigurationError when the shipped table is empty, the setting is not set and
        a model named ``Llms`` is installed (the error names the setting to add).
        """
        entries = self._source().current().entries
        if not entries and self._model is None:
            refuse_unconfigured_empty()
        return entries

    @property
    def problems(self) -> tuple[str, ...]:
        """Why some rows are left out of the registry (invalid field, undecryptable key)."""
        return self._source().current().problems

    def refresh(self) -> None:
        """Read the table again now and wait for it (the read runs in the watcher thread)."""
        source = self._source()
        source.invalidate()
        source.current()

    async def arefresh(self) -> None:
        """:meth:`refresh` without blocking the event loop; also warms a new process."""
        await asyncio.to_thread(self.refresh)

    async def aensure_loaded(self) -> None:
        """Wait for the first load off the event loop (the client's async ``generate()`` calls
        this, so a cold process never blocks its loop); returns at once once loaded."""
        source = self._source()
        if source.snapshot is None:
            await asyncio.to_thread(source.current)


def stop_registry_watcher(timeout: float = 5.0) -> None:
    """Stop the background checker, close its database connection, forget all snapshots.

    Call it in tests before the test database is dropped (PostgreSQL refuses to drop a
    database that has connections); the next lookup starts everything again.
    """
    _watch.stop(timeout)
