"""Structured events through structlog, delivered to the stdlib logger ``creative_services``.

structlog is imported on the first event, not at import. Events go through stdlib logging so the
application's logging configuration (Django's LOGGING, ``logging.basicConfig``) decides where
they land; nothing is printed by default. Keys never reach an event: callers pass EntryRefs.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["LOGGER_NAME", "debug_enabled", "get_logger", "info_enabled"]

LOGGER_NAME = "creative_services"
_logger: Any = None
_stdlib_logger = logging.getLogger(LOGGER_NAME)


def info_enabled() -> bool:
    """Whether an INFO event would be emitted: skip building per-call events when not."""
    return _stdlib_logger.isEnabledFor(logging.INFO)


def debug_enabled() -> bool:
    """Whether DEBUG events (the only ones that carry prompts) would be emitted."""
    return _stdlib_logger.isEnabledFor(logging.DEBUG)


def get_logger() -> Any:
    """The library's structlog logger (bound to the stdlib logger ``creative_services``)."""
    global _logger
    if _logger is None:
        import structlog

        _logger = structlog.wrap_logger(
            _stdlib_logger,
            wrapper_class=structlog.stdlib.BoundLogger,
            processors=[
                structlog.stdlib.filter_by_level,
                structlog.processors.format_exc_info,
                structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
            ],
        )
    return _logger
