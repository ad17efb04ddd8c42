"""Shared helpers of the fault-injection suite: entries on the loopback fake, a zero-wait sleep."""

from __future__ import annotations

import socket
from typing import Any

from creative_services import (
    DictRegistry,
    DynamicLLMClient,
    InMemoryUsageTracker,
    LLMEntry,
    RetryPolicy,
)
from creative_services.testing.fake_provider import FakeProvider
from creative_services.types import UsageRecord

# Recognisable, obviously fake keys: the leak scans look for any 8-character piece of them.
KEY = "sk-" + "fault-QwErTy7531ZxCvB8642MnBvC"
OTHER_KEY = "sk-" + "fault-other-PoIuY0987LkJhG6543"


def entry(fake: FakeProvider | str, name: str = "primary", **kw: Any) -> LLMEntry:
    """An OpenAI-routed entry pointed at the fake (or at a URL)."""
    fields: dict[str, Any] = {
        "name": name,
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "tier": "standard",
        "api_key": KEY,
        "api_endpoint": fake if isinstance(fake, str) else fake.base_url,
    }
    fields.update(kw)
    return LLMEntry(**fields)


def make_client(
    entries: list[LLMEntry], clock: Any, policy: RetryPolicy | None = None, **kw: Any
) -> DynamicLLMClient:
    kw.setdefault("tracker", InMemoryUsageTracker())
    return DynamicLLMClient(
        DictRegistry(entries),
        retry_policy=policy or RetryPolicy(),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def records(client: DynamicLLMClient) -> list[UsageRecord]:
    tracker = client.tracker
    assert isinstance(tracker, InMemoryUsageTracker)
    return list(tracker.records)


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def pieces(secret: str, size: int = 8) -> list[str]:
    """Every ``size``-character substring of ``secret``."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaked(secret: str, text: str) -> list[str]:
    """The pieces of ``secret`` that occur in ``text`` (empty when none does)."""
    return [p for p in pieces(secret) if p in text]
