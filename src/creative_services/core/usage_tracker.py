"""Deprecated names of the original ``creative_services.core.usage_tracker``, loaded when used."""

from creative_services._compat import moved
from creative_services.core._names import TRACKER

__getattr__, __dir__ = moved(__name__, TRACKER)
