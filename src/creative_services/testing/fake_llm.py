"""A fake LLM that plugs into a registry: scripted answers, usage, latency and failures.

::

    from creative_services.testing import FakeLLM

    with FakeLLM() as fake:
        fake.reply("Bonjour", prompt_tokens=12, completion_tokens=3)
        fake.rate_limit(retry_after=0)          # then a 429 with Retry-After: 0
        client = fake.client()                  # or DictRegistry(fake.entries())
        response = client.generate_sync("Say hello in French")
        assert fake.prompts == ["Say hello in French"]

Calls go through the real client and LiteLLM to a :class:`FakeProvider` on 127.0.0.1, so
retries, fallbacks, pricing, usage records and streaming behave as with a real provider; only
the network ends at loopback. No key, no network, no cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from creative_services.testing.fake_provider import FakeProvider, RecordedRequest
from creative_services.types import LLMEntry, LLMTier

if TYPE_CHECKING:
    from creative_services.client import DynamicLLMClient
    from creative_services.registry import DictRegistry
    from creative_services.tracking import UsageTracker

__all__ = ["FAKE_API_KEY", "FakeLLM"]

FAKE_API_KEY = "sk-test-fake-llm"
"""The key fake entries carry: not shaped like a real key, so no redaction or lint trips on it."""

_DEFAULT_MODELS = {"anthropic": "claude-3-5-haiku-20241022"}


class FakeLLM:
    """A scripted LLM on loopback, handed out as :class:`LLMEntry` objects (one per tier).

    ``provider`` picks the wire format the real client speaks to it: ``"openai"`` (default),
    ``"openai_compatible"`` or ``"anthropic"``. Entries are priced at ``cost_per_1k_input`` /
    ``cost_per_1k_output`` so costs in tests are exact (pass None to use LiteLLM's price map).
    """

    def __init__(
        self,
        *,
        provider: str = "openai",
        model_name: str | None = None,
        name: str = "fake",
        tiers: Iterable[LLMTier | str] = tuple(LLMTier),
        cost_per_1k_input: Decimal | str | None = "0.001",
        cost_per_1k_output: Decimal | str | None = "0.002",
        default_answer: str = "fake answer",
    ) -> None:
        self.server = FakeProvider()
        self.server.default_content = default_answer
        self.provider = provider
        self.model_name = model_name or _DEFAULT_MODELS.get(provider, "gpt-4o-mini")
        self.name = name
        self.tiers = tuple(LLMTier.parse(tier) for tier in tiers)
        self.cost_per_1k_input = cost_per_1k_input
        self.cost_per_1k_output = cost_per_1k_output
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the loopback server is serving."""
        return self._running

    def start(self) -> FakeLLM:
        """Start serving (a daemon thread); returns self."""
        if not self._running:
            self.server.start()
            self._running = True
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (a stopped fake cannot start again)."""
        self._running = False
        self.server.stop()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The fake's URL, the ``api_endpoint`` of its entries."""
        return self.server.base_url

    # --- what plugs into a registry -----------------------------------------------------------

    def entry(self, tier: LLMTier | str = LLMTier.STANDARD, **fields: Any) -> LLMEntry:
        """One entry for ``tier`` pointing at this fake; ``fields`` override any entry field."""
        tier = LLMTier.parse(tier)
        values: dict[str, Any] = {
            "name": f"{self.name}-{tier.value}",
            "provider": self.provider,
            "model_name": self.model_name,
            "tier": tier,
            "api_endpoint": self.base_url,
            "api_key": FAKE_API_KEY,
            "cost_per_1k_input": self.cost_per_1k_input,
            "cost_per_1k_output": self.cost_per_1k_output,
        }
        values.update(fields)
        return LLMEntry(**values)

    def entries(self) -> list[LLMEntry]:
        """One entry per tier of :attr:`tiers` (all four by default)."""
        return [self.entry(tier) for tier in self.tiers]

    def registry(self) -> DictRegistry:
        """A ``DictRegistry`` over :meth:`entries`."""
        from creative_services.registry import DictRegistry

        return DictRegistry(self.entries())

    def client(self, *, tracker: UsageTracker | None = None, **kwargs: Any) -> DynamicLLMClient:
        """A ``DynamicLLMClient`` over :meth:`registry`, starting the fake if needed.

        ``tracker`` defaults to a new ``InMemoryUsageTracker``; ``kwargs`` go to the client
        (e.g. ``clock=clock, sleep=clock.sleep`` with a :class:`FakeClock`).
        """
        from creative_services.client import DynamicLLMClient
        from creative_services.tracking import InMemoryUsageTracker

        self.start()
        return DynamicLLMClient(
            self.registry(),
            tracker=tracker if tracker is not None else InMemoryUsageTracker(),
            **kwargs,
        )

    # --- scripting ---------------------------------------------------------------------------

    def reply(
        self,
        content: str = "fake answer",
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        usage: bool = True,
        cost: Decimal | float | str | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue an answer. ``usage=False`` sends no token counts (the client estimates them);
        ``cost`` is a provider-reported cost (as OpenRouter sends); ``latency`` in seconds."""
        extra = {"cost": float(cost)} if cost is not None else None
        self.server.reply(
            content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage=usage,
            usage_extra=extra,
            delay=latency,
            times=times,
        )

    def stream(
        self,
        chunks: Sequence[str],
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        usage: bool = True,
        fail_after: int | None = None,
        chunk_delay: float = 0.0,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a streamed answer, one chunk per item; ``fail_after=N`` breaks the stream
        after N chunks. A non-streamed call gets the joined text."""
        self.server.stream(
            chunks,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage=usage,
            fail_after=fail_after,
            chunk_delay=chunk_delay,
            delay=latency,
            times=times,
        )

    def rate_limit(self, retry_after: float | None = 1.0, *, times: int = 1) -> None:
        """Queue a 429 answer, with a ``Retry-After`` header unless ``retry_after`` is None."""
        headers = {} if retry_after is None else {"retry-after": _seconds(retry_after)}
        self.server.fail(429, "Rate limit reached (fake)", headers=headers, times=times)

    def server_error(self, status: int = 500, *, times: int = 1) -> None:
        """Queue a provider failure (500 by default; 502, 503 and 529 work too)."""
        self.server.fail(status, "The server had an error (fake)", times=times)

    def fail(
        self,
        status: int,
        message: str = "scripted failure",
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Queue an error answer with any status (401, 400 with a context-window message...)."""
        self.server.fail(status, message, headers=headers, times=times)

    def timeout(self, after: float = 30.0, *, times: int = 1) -> None:
        """Queue an answer that takes ``after`` seconds: with a shorter client ``timeout`` the
        call times out. Stopping the fake ends the wait."""
        self.server.hang(after, times=times)

    def disconnect(self, *, times: int = 1) -> None:
        """Queue a dropped connection (no HTTP answer at all)."""
        self.server.reset_connection(times=times)

    # --- what it received -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order (JSON bodies parsed, headers lower-cased)."""
        return self.server.requests

    @property
    def prompts(self) -> list[str]:
        """The text of the last user message of each request."""
        return [_last_user_text(request.body) for request in self.requests]

    @property
    def pending(self) -> int:
        """Scripted answers not served yet."""
        return self.server.pending


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _last_user_text(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
    return ""
