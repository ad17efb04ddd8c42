"""Swap the registry the bridges use, and collect the usage records calls make.

::

    from creative_services.testing import FakeLLM, capture_usage, override_registry

    with FakeLLM() as fake, override_registry(fake), capture_usage() as usage:
        BFAgentLLMBridge().generate_text("hi")     # served by the fake
    assert usage.total_tokens == 15
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from creative_services.types import LLMEntry, UsageRecord

if TYPE_CHECKING:
    from creative_services.registry import LLMRegistry
    from creative_services.testing.fake_llm import FakeLLM
    from creative_services.tracking import UsageTracker

__all__ = ["RegistryOverride", "UsageCapture", "capture_usage", "override_registry"]

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()


class RegistryOverride:
    """What :func:`override_registry` returns: a ``with`` block or a sync/async decorator.

    Inside it :attr:`registry` and :attr:`tracker` are what ``bridges.default_registry()`` /
    ``default_tracker()`` (so the BFAgent bridges and the OpenAI drop-in) use. Reusable: each
    ``with`` or decorated call applies it afresh. Process-wide (like Django's
    ``override_settings``): threads started inside see it too; do not overlap two in
    concurrently running tasks.
    """

    def __init__(
        self,
        target: LLMRegistry | FakeLLM | LLMEntry | Iterable[LLMEntry],
        tracker: UsageTracker | None,
    ) -> None:
        self._target = target
        self._tracker = tracker
        self._active: list[tuple[Any, Any, bool]] = []
        self.registry: LLMRegistry | None = None
        self.tracker: UsageTracker | None = tracker

    def _build(self) -> tuple[LLMRegistry, bool]:
        from creative_services.registry import DictRegistry, LLMRegistry
        from creative_services.testing.fake_llm import FakeLLM

        target = self._target
        if isinstance(target, FakeLLM):
            started = not target.running
            target.start()
            return target.registry(), started
        if isinstance(target, LLMEntry):
            return DictRegistry([target]), False
        if isinstance(target, LLMRegistry):
            return target, False
        return DictRegistry(target), False

    def __enter__(self) -> LLMRegistry:
        from creative_services import bridges
        from creative_services.tracking import InMemoryUsageTracker

        registry, started = self._build()
        tracker = self._tracker if self._tracker is not None else InMemoryUsageTracker()
        pair = (registry, tracker)
        with _lock:
            bridges._overrides.append(pair)
        self._active.append((pair, registry, started))
        self.registry, self.tracker = registry, tracker
        return registry

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from creative_services import bridges

        pair, _, started = self._active.pop()
        with _lock:
            for index in range(len(bridges._overrides) - 1, -1, -1):
                if bridges._overrides[index] is pair:
                    del bridges._overrides[index]
                    break
        if started:
            from creative_services.testing.fake_llm import FakeLLM

            cast(FakeLLM, self._target).stop()

    def __call__(self, function: F) -> F:
        """Decorate a sync or async function (e.g. a test) to run inside the override."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await function(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return cast(F, wrapper)


def override_registry(
    registry: LLMRegistry | FakeLLM | LLMEntry | Iterable[LLMEntry],
    *,
    tracker: UsageTracker | None = None,
) -> RegistryOverride:
    """Make ``creative_services.bridges.default_registry()`` return ``registry`` for a while.

    ``registry`` is any registry, a :class:`FakeLLM` (started for the duration when it is not
    running), one entry or entries. ``tracker`` (default: a fresh ``InMemoryUsageTracker``, so
    tests never write the real usage store) is what ``default_tracker()`` returns meanwhile.
    Use as ``with override_registry(...) as registry:`` or as a decorator on sync and async
    functions. Clients built before the block keep their own registry.
    """
    return RegistryOverride(registry, tracker)


class UsageCapture(list[UsageRecord]):
    """The usage records captured so far (a list), with totals."""

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens used, over all records (response-cache hits used none)."""
        return sum(record.prompt_tokens for record in self if not record.cache_hit)

    @property
    def completion_tokens(self) -> int:
        """Completion tokens used, over all records (response-cache hits used none)."""
        return sum(record.completion_tokens for record in self if not record.cache_hit)

    @property
    def total_tokens(self) -> int:
        """Prompt, completion and reasoning tokens used (response-cache hits used none)."""
        return sum(record.total_tokens for record in self if not record.cache_hit)

    @property
    def cache_hits(self) -> int:
        """How many calls the response cache answered."""
        return sum(1 for record in self if record.cache_hit)

    @property
    def cost(self) -> Decimal:
        """The summed known costs (see :attr:`unpriced` for records whose cost is unknown)."""
        return sum((r.cost for r in self if r.cost is not None), Decimal(0))

    @property
    def unpriced(self) -> int:
        """How many records have no known cost (failed calls, models without a price)."""
        return sum(1 for record in self if record.cost is None)

    @property
    def outcomes(self) -> list[str]:
        """Each record's outcome (``"success"``, ``"error"``, ...), in order."""
        return [record.outcome for record in self]


@contextmanager
def capture_usage() -> Iterator[UsageCapture]:
    """Collect every :class:`UsageRecord` any client makes inside the block, in order.

    Records come from all threads (sync calls, the background loop), whatever the tracker.
    """
    from creative_services.tracking import add_observer, remove_observer

    captured = UsageCapture()
    observer = captured.append
    add_observer(observer)
    try:
        yield captured
    finally:
        remove_observer(observer)
