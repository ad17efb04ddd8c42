"""A fake monotonic clock for retry tests: ``sleep`` advances it instead of waiting."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Pass as ``DynamicLLMClient(..., clock=clock, sleep=clock.sleep)``; :attr:`sleeps` lists
    every wait the client asked for, in seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock forward; returns at once."""
        self.sleeps.append(seconds)
        self.now += seconds
