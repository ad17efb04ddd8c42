"""How ``creative-services serve`` builds its application from the environment.

Every worker process builds its own from the same variables (uvicorn imports
:func:`app_from_env` as a factory in each worker), so the command line only sets variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from creative_services.exceptions import ConfigurationError
from creative_services.gateway._app import GatewayApp, GatewayLimits
from creative_services.gateway.keys import VirtualKeyStore

__all__ = ["KEYS_ENV", "app_from_env", "default_keys_path"]

KEYS_ENV = "CREATIVE_SERVICES_GATEWAY_KEYS"
MAX_BODY_ENV = "CREATIVE_SERVICES_GATEWAY_MAX_BODY"
DEADLINE_ENV = "CREATIVE_SERVICES_GATEWAY_DEADLINE"
USER_DAY_BUDGET_ENV = "CREATIVE_SERVICES_GATEWAY_USER_DAY_BUDGET"
ACCESS_LOG_ENV = "CREATIVE_SERVICES_GATEWAY_ACCESS_LOG"


def _access_log(env: Mapping[str, str]) -> None:
    """With ``ACCESS_LOG_ENV=1`` (``serve`` sets it) and no handler of the application's own,
    the library's INFO events (``gateway_request``: method, path, status, ms, key id, user,
    model; never a prompt or a key) go to stderr, one line each."""
    import logging

    from creative_services._log import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    if env.get(ACCESS_LOG_ENV) == "1" and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def default_keys_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CREATIVE_SERVICES_GATEWAY_KEYS``, else ``keys.sqlite3`` beside the usage store."""
    env = os.environ if environ is None else environ
    explicit = env.get(KEYS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "creative-services" / "keys.sqlite3"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigurationError(f"{name} must be a number > 0, got {raw!r}")
    return value


def limits_from_env(env: Mapping[str, str]) -> GatewayLimits:
    """The request limits the variables set. Raises: ConfigurationError."""
    default = GatewayLimits()
    return GatewayLimits(
        max_body_bytes=int(_number(env, MAX_BODY_ENV, default.max_body_bytes)),
        deadline=_number(env, DEADLINE_ENV, default.deadline),
    )


def _embedded(env: Mapping[str, str]) -> Any:
    """The client without Django: the environment's registry, SQLite usage, an optional
    per-user daily budget (kept in each worker's memory)."""
    from creative_services import DictRegistry, DynamicLLMClient, SQLiteUsageTracker
    from creative_services.budgets import BudgetLimit, InMemoryBudget

    budget = None
    raw = env.get(USER_DAY_BUDGET_ENV, "").strip()
    if raw:
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise ConfigurationError(f"{USER_DAY_BUDGET_ENV} must be USD, got {raw!r}") from None
        budget = InMemoryBudget([BudgetLimit("user", "day", amount)])
    registry = DictRegistry.from_env(env)
    return DynamicLLMClient(registry, tracker=SQLiteUsageTracker(), budget=budget, environ=env)


def _django() -> tuple[Any, Any]:
    """The client of a Django project with our app (its registry, batched tracker, budget) and
    its key table."""
    import django

    django.setup()
    from django.apps import apps

    if not apps.is_installed("creative_services.contrib.django"):
        raise ConfigurationError(
            "DJANGO_SETTINGS_MODULE is set but 'creative_services.contrib.django' is not in its "
            "INSTALLED_APPS: add it (and migrate), or unset DJANGO_SETTINGS_MODULE to serve the "
            "environment's registry"
        )
    from creative_services import DynamicLLMClient
    from creative_services.adapters import DjangoLLMRegistry, DjangoUsageTracker
    from creative_services.contrib.django.budgets import DjangoBudget
    from creative_services.contrib.django.gateway_keys import DjangoKeyStore

    tracker = DjangoUsageTracker(batch=True)
    client = DynamicLLMClient(DjangoLLMRegistry(), tracker=tracker, budget=DjangoBudget())
    return client, DjangoKeyStore()


def app_from_env(environ: Mapping[str, str] | None = None) -> GatewayApp:
    """The gateway for this process. Raises: ConfigurationError."""
    env = os.environ if environ is None else environ
    _access_log(env)
    if env.get("DJANGO_SETTINGS_MODULE"):
        client, keys = _django()
    else:
        client, keys = _embedded(env), VirtualKeyStore(default_keys_path(env))
    return GatewayApp(client, keys, limits_from_env(env))
