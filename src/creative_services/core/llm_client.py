"""Deprecated names of the original ``creative_services.core.llm_client``, loaded when used."""

from creative_services._compat import moved
from creative_services.core._names import CLIENT

__getattr__, __dir__ = moved(__name__, CLIENT)
