"""The original creative-services package's API, mapped onto today's (see docs/upgrading.rst).

Nothing here is imported by ``import creative_services``: the old import paths
(``creative_services.core.*``, ``creative_services.adapters.django_adapter`` /
``.bfagent_compat`` and the old top-level names) load these modules when a name is used. Each
old name warns once per process with a ``DeprecationWarning`` that names its replacement.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated", "moved", "reset_warnings"]

_warned: set[str] = set()
_lock = threading.Lock()


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn once per process that ``old`` is deprecated in favour of ``new``."""
    with _lock:
        if old in _warned:
            return
        _warned.add(old)
    warnings.warn(
        f"{old} is the original creative-services API; use {new} instead (see docs/upgrading.rst)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def reset_warnings() -> None:
    """Forget which names have warned (for tests)."""
    with _lock:
        _warned.clear()


def moved(
    module: str, names: Mapping[str, tuple[str, str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for an old module: ``name -> (defining module, new)``."""

    def __getattr__(name: str) -> Any:
        try:
            where, new = names[name]
        except KeyError:
            raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(where), name)
        deprecated(f"{module}.{name}", new)
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
