"""Deprecated names of the original ``creative_services.adapters.bfagent_compat`` (lazy)."""

from creative_services._compat import moved
from creative_services.core._names import BFAGENT

__getattr__, __dir__ = moved(__name__, BFAGENT)
