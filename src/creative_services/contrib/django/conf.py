"""Settings of the Django app, read when accessed (so ``override_settings`` works).

=======================================================  =========================================
``CREATIVE_SERVICES_LLM_MODEL``                          ``"creative_services.LLMModel"``: the
                                                         model the registry reads, e.g.
                                                         ``"myapp.Llms"`` for an existing table
``CREATIVE_SERVICES_REGISTRY_CHECK_INTERVAL``            ``0.5``: seconds between two background
                                                         checks for registry changes
``CREATIVE_SERVICES_REGISTRY_LOAD_TIMEOUT``              ``10.0``: seconds a lookup waits for the
                                                         first load of the registry
``CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT``             ``5.0``: seconds one background check may
                                                         take (connect and statements, on the
                                                         client side); then it is aborted and
                                                         the next check reconnects
``CREATIVE_SERVICES_BUDGET_TIMEOUT``                     ``2.0``: seconds a budget operation may
                                                         take (less when the call's deadline is
                                                         nearer); then it is a
                                                         ``BudgetUnavailableError``
``CREATIVE_SERVICES_BUDGET_FAIL_OPEN``                   ``False``: when the budget's database
                                                         does not answer, refuse the call
                                                         (closed); ``True``: let it run
                                                         unbudgeted (open, logged)
``CREATIVE_SERVICES_BUDGET_LEASE_MARGIN``                ``30.0``: seconds a reservation outlives
                                                         its call's deadline before any process
                                                         may reclaim it
``CREATIVE_SERVICES_ENCRYPTION_KEY``                     ``None``: key (any string, or a list,
                                                         newest first) that encrypts stored API
                                                         keys; default: ``SECRET_KEY``.
                                                         ``SECRET_KEY`` and
                                                         ``SECRET_KEY_FALLBACKS`` always still
                                                         decrypt
``CREATIVE_SERVICES_USAGE_SPOOL``                        folder of the local spool of
                                                         ``DjangoUsageTracker(batch=True)``: a
                                                         record is there before ``record()``
                                                         returns, until it is written; default:
                                                         ``$XDG_DATA_HOME/creative-services/
                                                         usage-spool``; ``False``: no spool
                                                         (records wait in memory only)
``CREATIVE_SERVICES_USAGE_SPOOL_MAX_BYTES``              ``64 MiB``: the size of one process's
                                                         spool file (reserved on disk when it
                                                         opens; about 100,000 records); when
                                                         full, ``record()`` raises
                                                         ``UsageSpoolFullError``
=======================================================  =========================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_LLM_MODEL", "conf"]

DEFAULT_LLM_MODEL = "creative_services.LLMModel"


class _Conf:
    """Attribute access to the app's settings with their defaults; nothing is cached."""

    @staticmethod
    def _get(name: str, default: Any) -> Any:
        from django.conf import settings

        return getattr(settings, f"CREATIVE_SERVICES_{name}", default)

    @property
    def LLM_MODEL(self) -> str:
        """``app_label.ModelName`` of the model the registry reads."""
        return str(self._get("LLM_MODEL", DEFAULT_LLM_MODEL))

    @property
    def REGISTRY_CHECK_INTERVAL(self) -> float:
        """Seconds between two background checks for registry changes."""
        return max(0.01, float(self._get("REGISTRY_CHECK_INTERVAL", 0.5)))

    @property
    def REGISTRY_LOAD_TIMEOUT(self) -> float:
        """Seconds a lookup waits for a (re)load before it gives up."""
        return float(self._get("REGISTRY_LOAD_TIMEOUT", 10.0))

    @property
    def REGISTRY_QUERY_TIMEOUT(self) -> float:
        """Seconds one background registry check may take before it is aborted."""
        return max(0.1, float(self._get("REGISTRY_QUERY_TIMEOUT", 5.0)))

    @property
    def BUDGET_TIMEOUT(self) -> float:
        """Seconds one budget operation may take before it is a BudgetUnavailableError."""
        return max(0.05, float(self._get("BUDGET_TIMEOUT", 2.0)))

    @property
    def BUDGET_FAIL_OPEN(self) -> bool:
        """Whether calls run unbudgeted (True) or are refused (False) when the budget is down."""
        return bool(self._get("BUDGET_FAIL_OPEN", False))

    @property
    def BUDGET_LEASE_MARGIN(self) -> float:
        """Seconds a reservation outlives its call's deadline before it may be reclaimed."""
        return max(0.0, float(self._get("BUDGET_LEASE_MARGIN", 30.0)))

    @property
    def USAGE_SPOOL(self) -> Path | None:
        """Folder of the batched usage tracker's spool, or None when it is turned off."""
        value = self._get("USAGE_SPOOL", None)
        if value is None:
            base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
            return Path(base) / "creative-services" / "usage-spool"
        if value is False or value == "":
            return None
        return Path(value).expanduser()

    @property
    def USAGE_SPOOL_MAX_BYTES(self) -> int:
        """Bytes of one process's spool file: the bound on unwritten records it holds."""
        return max(64 * 1024, int(self._get("USAGE_SPOOL_MAX_BYTES", 64 * 1024 * 1024)))

    @property
    def ENCRYPTION_KEYS(self) -> list[str]:
        """Secrets that key the encryption of stored API keys, newest first.

        The first one encrypts; all of them decrypt. ``CREATIVE_SERVICES_ENCRYPTION_KEY`` comes
        first when set, then ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` (decrypt-only then), so
        setting it later does not strand the keys stored under ``SECRET_KEY``.
        """
        from django.conf import settings

        explicit = self._get("ENCRYPTION_KEY", None)
        if not explicit:
            explicit = []
        elif isinstance(explicit, str):
            explicit = [explicit]
        keys = [
            *(str(k) for k in explicit),
            settings.SECRET_KEY,
            *getattr(settings, "SECRET_KEY_FALLBACKS", []),
        ]
        return list(dict.fromkeys(k for k in keys if k))


conf = _Conf()
"""The app's settings: ``conf.LLM_MODEL`` and friends."""
