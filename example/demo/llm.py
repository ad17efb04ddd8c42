"""One client per process, over the database registry and the database usage tracker.

The registry keeps an in-memory snapshot of the LLM table (no query per call) that a background
thread refreshes when any process changes the table; the tracker writes one ``LLMUsage`` row per
call, failures included. ``BFAgentLLMBridge()`` (``creative_services.adapters``) picks the same
two by itself when Django is set up; it returns only the text, so the page uses the client.
"""

from __future__ import annotations

import threading

from creative_services import DynamicLLMClient
from creative_services.adapters import DjangoLLMRegistry, DjangoUsageTracker

_client: DynamicLLMClient | None = None
_lock = threading.Lock()


def get_client() -> DynamicLLMClient:
    """The process's client, created on first use (not at import: no database access then)."""
    global _client
    with _lock:
        if _client is None:
            _client = DynamicLLMClient(DjangoLLMRegistry(), tracker=DjangoUsageTracker())
        return _client
