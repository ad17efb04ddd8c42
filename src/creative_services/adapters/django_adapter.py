"""Deprecated names of the original ``creative_services.adapters.django_adapter`` (lazy)."""

from creative_services._compat import moved
from creative_services.core._names import DJANGO

__getattr__, __dir__ = moved(__name__, DJANGO)
