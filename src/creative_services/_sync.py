"""One long-lived event loop in a daemon thread: the only loop LiteLLM ever sees.

Every provider call runs here, whether the caller is async (``await client.generate()``) or
sync (``generate_sync()``, the BFAgent bridge). LiteLLM caches HTTP sessions and a logging worker
per loop; confining it to one loop that lives as long as the process means no "Event loop is
closed", no unclosed transports when a script calls ``asyncio.run()`` twice, no loop per call,
and one thread in total. The caller's ``contextvars`` travel with each call.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "add_fork_hook",
    "add_shutdown_hook",
    "get_loop",
    "refuse_in_loop_thread",
    "run_async",
    "run_sync",
    "shutdown",
]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_hooks: list[Callable[[], Awaitable[None]]] = []
_fork_hooks: list[Callable[[], None]] = []
_SHUTDOWN_TIMEOUT = 5.0


def _after_fork_in_child() -> None:
    """A forked child (gunicorn --preload, Celery prefork) inherits the loop object but not its
    thread: forget both, so the first call in the child starts its own loop, and let the
    modules that cached loop-bound objects (LiteLLM's HTTP clients) drop them."""
    global _lock, _loop, _thread
    _lock = threading.Lock()
    _loop = _thread = None
    for hook in list(_fork_hooks):
        with contextlib.suppress(Exception):
            hook()


os.register_at_fork(after_in_child=_after_fork_in_child)


def add_fork_hook(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child before it makes its first call."""
    _fork_hooks.append(hook)


def get_loop() -> asyncio.AbstractEventLoop:
    """The background loop, started on first use."""
    global _loop, _thread
    loop = _loop
    if loop is not None:
        return loop
    with _lock:
        if _loop is None:
            new_loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(new_loop)
                new_loop.call_soon(ready.set)
                new_loop.run_forever()

            _thread = threading.Thread(target=serve, name="creative-services-loop", daemon=True)
            _thread.start()
            ready.wait()
            _loop = new_loop
            atexit.register(shutdown)
        return _loop


def _in_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the background loop from any other loop (or on it, directly)."""
    if _in_loop_thread():
        return await coro
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    return await asyncio.wrap_future(future)


def refuse_in_loop_thread() -> None:
    """Raises RuntimeError on the background loop's own thread, where blocking would deadlock."""
    if _in_loop_thread():
        raise RuntimeError(
            "a sync creative-services call was made from inside the library's own event loop "
            "(e.g. from a tracker or callback): use the async API there"
        )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and block this thread until it finishes.

    Works in plain scripts, worker threads and while another loop runs in this thread (Jupyter,
    async views). Raises RuntimeError when called from the background loop itself, where
    blocking would deadlock.
    """
    try:
        refuse_in_loop_thread()
    except RuntimeError:
        coro.close()
        raise
    future = asyncio.run_coroutine_threadsafe(coro, get_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()  # KeyboardInterrupt and friends: do not leave the call running
        raise


def add_shutdown_hook(hook: Callable[[], Awaitable[None]]) -> None:
    """Run ``hook`` on the background loop at interpreter exit, before the loop stops.

    Must be called after the imports whose own atexit handlers should run later (atexit is
    last-in, first-out).
    """
    with _lock:
        _hooks.append(hook)
    atexit.unregister(shutdown)
    atexit.register(shutdown)


def shutdown() -> None:
    """Run the shutdown hooks and stop the background loop (idempotent; called at exit)."""
    global _loop, _thread
    with _lock:
        loop, thread, hooks = _loop, _thread, list(_hooks)
        _loop = _thread = None
    if loop is None or thread is None or loop.is_closed():
        return

    async def run_hooks() -> None:
        for hook in reversed(hooks):
            # A failing cleanup must not break interpreter exit.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(hook(), _SHUTDOWN_TIMEOUT)
        # Closed transports finish closing on the next loop iterations (aiohttp's advice).
        for _ in range(3):
            await asyncio.sleep(0)
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_SHUTDOWN_TIMEOUT)
        await loop.shutdown_asyncgens()

    with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
        asyncio.run_coroutine_threadsafe(run_hooks(), loop).result(_SHUTDOWN_TIMEOUT * 2)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(_SHUTDOWN_TIMEOUT)
    if not thread.is_alive():
        loop.close()
