"""Streamed answers: :class:`LLMStream` (async) and :class:`SyncLLMStream`.

The provider call runs on the library's background loop (``_sync.py``) like every other call; its
text deltas cross to the caller through a :class:`_Pipe`, which wakes the caller only when it is
waiting, so a fast stream costs one thread hop per batch of chunks, not one per chunk.

Once the first output has arrived, a stream stays bounded: :func:`read_limit` (pure) says how
long the next chunk may take (``idle_timeout`` since the last chunk, ``total_timeout`` since the
stream started); :class:`_Pace` applies it around each read and raises ``LLMTimeoutError``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from creative_services.exceptions import (
    InvalidRequestError,
    LLMTimeoutError,
    StreamNotFinishedError,
)
from creative_services.types import LLMEntry, LLMResponse

if TYPE_CHECKING:
    import asyncio
    from types import TracebackType

__all__ = ["LLMStream", "StreamBounds", "SyncLLMStream", "read_limit", "stream_bounds"]

T = TypeVar("T")

Bound = Literal["idle", "total"]


@dataclass(frozen=True, slots=True)
class StreamBounds:
    """How long a stream may take, in seconds.

    ``first_output``: the deadline for the first text or tool call, over every retry and
    fallback (the call's ``timeout``, shortened to ``total`` when that is smaller). ``idle``:
    the most allowed between two chunks once the first output arrived. ``total``: the most the
    whole stream may take from its start, or None for no such bound.
    """

    first_output: float = 60.0
    idle: float = 60.0
    total: float | None = None


def _seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequestError(
            f"{name} must be seconds > 0 (or None), got {value!r}", param=name
        )
    return float(value)


def stream_bounds(
    timeout: float | None,
    idle_timeout: float | None,
    total_timeout: float | None,
    *,
    default_timeout: float,
) -> StreamBounds:
    """The bounds of a stream called with these arguments (None: the default).

    ``idle_timeout`` defaults to the call's ``timeout`` (itself ``default_timeout``, the retry
    policy's, when None); ``total_timeout`` to no bound. Raises: InvalidRequestError.
    """
    first = default_timeout if timeout is None else _seconds("timeout", timeout)
    idle = first if idle_timeout is None else _seconds("idle_timeout", idle_timeout)
    total = None if total_timeout is None else _seconds("total_timeout", total_timeout)
    return StreamBounds(
        first_output=first if total is None else min(first, total), idle=idle, total=total
    )


def read_limit(
    bounds: StreamBounds, *, now: float, started: float, last_chunk: float
) -> tuple[float, Bound]:
    """How many seconds the next chunk may take, and the bound that sets it (pure).

    ``started`` is when the stream started, ``last_chunk`` when the last chunk arrived (the
    first output counts as one). A limit <= 0 means the stream is already over its bound.
    """
    idle_left = last_chunk + bounds.idle - now
    if bounds.total is None:
        return idle_left, "idle"
    total_left = started + bounds.total - now
    return (idle_left, "idle") if idle_left < total_left else (total_left, "total")


def _bound_error(entry: LLMEntry, bound: Bound, bounds: StreamBounds) -> LLMTimeoutError:
    if bound == "idle":
        what = f"sent no chunk for {bounds.idle:g}s (idle_timeout)"
    else:
        what = f"did not end within its {bounds.total:g}s total_timeout"
    return LLMTimeoutError(
        f"{entry.provider}: the stream {what}; it was closed after the text received so far "
        f"(the provider may still bill it)",
        model=entry.model_name,
        provider=entry.provider,
        entry=entry.ref,
        code=f"stream_{bound}_timeout",
    )


class _Pace:
    """Applies a stream's :class:`StreamBounds` to its reads after the first output."""

    __slots__ = ("bounds", "last_chunk", "started")

    def __init__(self, bounds: StreamBounds) -> None:
        self.bounds = bounds
        self.started = time.monotonic()
        self.last_chunk: float | None = None

    async def read(self, next_chunk: Callable[[], Awaitable[T]], entry: LLMEntry) -> T:
        """``await next_chunk()`` within the bounds. Raises: LLMTimeoutError."""
        import asyncio

        now = time.monotonic()
        if self.last_chunk is None:  # the first read follows the first output at once
            self.last_chunk = now
        limit, bound = read_limit(
            self.bounds, now=now, started=self.started, last_chunk=self.last_chunk
        )
        if limit <= 0:
            raise _bound_error(entry, bound, self.bounds)
        try:
            async with asyncio.timeout(limit) as scope:
                chunk = await next_chunk()
        except TimeoutError:
            if not scope.expired():
                raise
            raise _bound_error(entry, bound, self.bounds) from None
        self.last_chunk = time.monotonic()
        return chunk


class _End:
    __slots__ = ("error", "response")

    def __init__(self, response: LLMResponse | None, error: BaseException | None) -> None:
        self.response = response
        self.error = error


class _Pipe:
    """One-producer hand-over of items between threads (and loops).

    The producer (on the background loop) does not wake a waiting consumer at once: it schedules
    one wake-up for the end of its loop iteration, so the chunks parsed from one network read
    cross over together, for one thread hop instead of one per chunk. The end marker stays once
    taken, so a second consumer (``close()`` from another thread while one iterates) and the
    iterating one both see the end; every waiter is woken.
    """

    __slots__ = (
        "_final", "_items", "_lock", "_waiters", "_wake_pending", "cancelled", "pace", "task",
    )  # fmt: skip

    def __init__(self) -> None:
        self._items: deque[str | _End] = deque()
        self._lock = threading.Lock()
        self._waiters: list[Callable[[], object]] = []
        self._wake_pending = False
        self._final: _End | None = None
        self.task: asyncio.Task[None] | None = None
        self.cancelled = False
        self.pace = _Pace(StreamBounds())
        """The producer's bounds on its reads; :func:`run_on_loop` sets the call's own."""

    def put(self, item: str | _End) -> None:
        """Producer side, on the background loop."""
        with self._lock:
            self._items.append(item)
            if self._wake_pending or not self._waiters:
                return
            self._wake_pending = True
        task = self.task
        if task is None:  # not started through _produce (cannot happen for a real stream)
            self._wake()
        else:
            task.get_loop().call_soon(self._wake)

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
            self._wake_pending = False
        for waiter in waiters:
            with contextlib.suppress(RuntimeError):  # the consumer's loop has closed meanwhile
                waiter()

    def _take(self) -> str | _End | None:
        """Under the lock: the next item, the end again once it was taken, or None."""
        if self._items:
            item = self._items.popleft()
            if isinstance(item, _End):
                self._final = item
            return item
        return self._final

    def started(self, task: asyncio.Task[None]) -> bool:
        """Producer side: register the task; False when the consumer already cancelled."""
        with self._lock:
            self.task = task
            return not self.cancelled

    def cancel(self) -> None:
        """Consumer side, any thread: stop the producer now, or as soon as it starts."""
        with self._lock:
            self.cancelled = True
            task = self.task
        if task is not None:
            with contextlib.suppress(RuntimeError):  # the background loop has stopped
                task.get_loop().call_soon_threadsafe(task.cancel)

    async def aget(self) -> str | _End:
        import asyncio  # not at module import: asyncio costs ~20 ms, see bench/RESULTS.md

        while True:
            with self._lock:
                item = self._take()
                if item is not None:
                    return item
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append(functools.partial(loop.call_soon_threadsafe, _resolve, future))
            await future

    def get(self) -> str | _End:
        while True:
            with self._lock:
                item = self._take()
                if item is not None:
                    return item
                event = threading.Event()
                self._waiters.append(event.set)
            event.wait()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _produce(run: Coroutine[Any, Any, LLMResponse], pipe: _Pipe) -> None:
    """Background-loop side: run the call, then put the end marker (after the usage record)."""
    import asyncio

    task = asyncio.current_task()
    assert task is not None
    response: LLMResponse | None = None
    error: BaseException | None = None
    if not pipe.started(task):  # closed before it began: no call, no record
        run.close()
        pipe.put(_End(None, None))
        return
    try:
        response = await run
    except BaseException as exc:  # delivered to the consumer; cancellation included
        error = exc
    finally:
        pipe.put(_End(response, error))


class _StreamBase:
    __slots__ = ("__weakref__", "_before", "_closing", "_end", "_pipe", "_start")

    def __init__(
        self,
        start: Callable[[_Pipe], None],
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._start: Callable[[_Pipe], None] | None = start
        self._before = before
        self._pipe: _Pipe | None = None
        self._end: _End | None = None
        self._closing = False

    @property
    def response(self) -> LLMResponse:
        """The whole answer (content, usage, cost, entry, attempts) once the stream is read.

        Raises: StreamNotFinishedError before the end; the stream's own error if it failed.
        """
        if self._end is None:
            raise StreamNotFinishedError(
                "the stream has not been read to its end: iterate it fully before .response"
            )
        if self._end.response is None:
            raise StreamNotFinishedError(
                "the stream did not finish (it failed or was closed early), so it has no response"
            )
        return self._end.response

    @property
    def closed(self) -> bool:
        """True once the stream ended, failed or was closed."""
        return self._end is not None

    def _begin(self) -> _Pipe:
        if self._pipe is None:
            if self._start is None:  # its start failed before (bad arguments): nothing to read
                raise StreamNotFinishedError("this stream failed to start; create a new one")
            pipe = _Pipe()
            start, self._start = self._start, None
            try:
                start(pipe)
            except BaseException as exc:
                self._end = _End(None, exc)
                raise
            self._pipe = pipe
        return self._pipe

    def _finish(self, item: _End) -> None:
        import asyncio

        self._end = item
        error = item.error
        if error is None:
            return
        if isinstance(error, asyncio.CancelledError):
            if self._closing:
                return  # close()/aclose() asked for it
            if self._pipe is not None and self._pipe.cancelled:
                raise StreamNotFinishedError(
                    "the stream was cancelled before its end (a read of it was cancelled, e.g. "
                    "by a timeout): its text is incomplete"
                ) from error
            # Not our doing (the background loop is shutting down): never end the text silently.
            raise StreamNotFinishedError(
                "the stream was stopped before its end because the library's background loop "
                "shut down (interpreter exit)"
            ) from error
        raise error

    def _cancel(self) -> None:
        """Ask the background loop to stop the provider call (thread-safe, does not wait)."""
        if self._pipe is not None and self._end is None:
            self._pipe.cancel()

    def __del__(self) -> None:
        # Dropped before its end (``break`` out of a for loop): stop the provider call.
        if getattr(self, "_pipe", None) is not None and getattr(self, "_end", None) is None:
            self._cancel()


class LLMStream(_StreamBase):
    """An async iterator of text deltas; ``.response`` holds the whole answer at the end.

    Use ``async with client.stream(...) as stream`` to stop the provider call cleanly when you
    leave early (``break``, an exception); ``await stream.aclose()`` does the same. Exactly one
    usage record is written per stream: on completion, on failure midway and on early stop
    (then the tokens received so far are counted locally and flagged ``usage_estimated``).
    """

    __slots__ = ()

    def __aiter__(self) -> LLMStream:
        return self

    async def _abegin(self) -> _Pipe:
        if self._pipe is None and self._before is not None:
            before, self._before = self._before, None
            await before()  # e.g. a lazily loading registry, loaded off this loop
        return self._begin()

    async def __anext__(self) -> str:
        import asyncio

        if self._end is not None:
            raise StopAsyncIteration
        pipe = self._pipe or await self._abegin()
        try:
            item = await pipe.aget()
        except asyncio.CancelledError:
            self._cancel()
            raise
        if isinstance(item, str):
            return item
        self._finish(item)
        raise StopAsyncIteration

    async def __aenter__(self) -> LLMStream:
        await self._abegin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the provider call if it is still running and wait until its usage is recorded."""
        if self._pipe is None:
            self._start = None
            self._end = _End(None, None)
            return
        if self._end is not None:
            return
        self._closing = True
        self._cancel()
        while True:
            item = await self._pipe.aget()
            if isinstance(item, _End):
                self._end = item
                return


class SyncLLMStream(_StreamBase):
    """The blocking twin of :class:`LLMStream`: an iterator of text deltas, a context manager,
    ``.close()`` and ``.response``."""

    __slots__ = ()

    def __iter__(self) -> SyncLLMStream:
        return self

    def __next__(self) -> str:
        if self._end is not None:
            raise StopIteration
        item = self._begin().get()
        if isinstance(item, str):
            return item
        self._finish(item)
        raise StopIteration

    def __enter__(self) -> SyncLLMStream:
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the provider call if it is still running and wait until its usage is recorded."""
        if self._pipe is None:
            self._start = None
            self._end = _End(None, None)
            return
        if self._end is not None:
            return
        self._closing = True
        self._cancel()
        while True:
            item = self._pipe.get()
            if isinstance(item, _End):
                self._end = item
                return


def run_on_loop(run: Coroutine[Any, Any, LLMResponse], pipe: _Pipe, bounds: StreamBounds) -> None:
    """Start ``run`` on the background loop, feeding ``pipe``; the stream starts now."""
    import asyncio

    from creative_services import _sync

    pipe.pace = _Pace(bounds)
    asyncio.run_coroutine_threadsafe(_produce(run, pipe), _sync.get_loop())
