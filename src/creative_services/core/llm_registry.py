"""Deprecated names of the original ``creative_services.core.llm_registry``, loaded when used."""

from creative_services._compat import moved
from creative_services.core._names import REGISTRY

__getattr__, __dir__ = moved(__name__, REGISTRY)
