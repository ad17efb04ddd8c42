"""``creative-services serve``: the OpenAI HTTP API in front of the registry.

Any OpenAI client, in any language, changes one URL and one key: ``base_url`` to the gateway and
``api_key`` to a virtual key (``creative-services keys create``). Each call then gets the
registry's tiers, fallbacks, retries and budgets and leaves a usage record booked on the key's
user; provider keys never leave the gateway. See docs/gateway.rst.
"""

from __future__ import annotations

from creative_services.gateway._app import GatewayApp, GatewayLimits, mount
from creative_services.gateway._config import KEYS_ENV, app_from_env, default_keys_path
from creative_services.gateway.keys import BaseKeyStore, VirtualKey, VirtualKeyStore

__all__ = [
    "KEYS_ENV",
    "BaseKeyStore",
    "GatewayApp",
    "GatewayLimits",
    "VirtualKey",
    "VirtualKeyStore",
    "app_from_env",
    "default_keys_path",
    "mount",
]
