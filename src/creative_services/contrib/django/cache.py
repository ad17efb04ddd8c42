"""DjangoResponseCache: the response cache over one of Django's ``CACHES`` (Redis, Memcached)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from creative_services.cache import CachedAnswer, _check_ttl

__all__ = ["WORKERS", "DjangoResponseCache"]

WORKERS = 8
"""Threads the async methods of every :class:`DjangoResponseCache` of a process share."""


class DjangoResponseCache:
    """Keeps answers in ``django.core.cache.caches[alias]``, as JSON text, for ``ttl`` seconds.

    ``ttl=None`` keeps them until the backend evicts them. With a shared backend (Redis,
    Memcached, the database cache) every process and server shares the answers; ``locmem`` is
    per process. ``key_prefix`` is added before the library's own key, inside the backend's
    ``KEY_PREFIX`` and ``VERSION``. The alias is looked up at each call, so
    ``override_settings(CACHES=...)`` works. An entry that cannot be read back (another
    version's, or not ours) counts as a miss.

    The async methods run the backend's sync calls on a few threads of their own
    (``WORKERS``), not on Django's ``sync_to_async(thread_sensitive=True)`` thread, where every
    cache call of the process waits its turn: concurrent calls run side by side, and when all
    the threads are stuck on a backend that does not answer, a call raises ``TimeoutError`` at
    once instead of queueing (the client counts it as a miss). The client bounds each call by a
    share of its deadline (see :func:`creative_services.cache.cache_wait`).

    ``DynamicLLMClient(registry, cache=DjangoResponseCache("redis", ttl=3600))``.
    """

    def __init__(
        self, alias: str = "default", *, ttl: float | None = 3600.0, key_prefix: str = "llm:"
    ) -> None:
        self.alias = alias
        self.ttl = _check_ttl(ttl, "ttl")
        self.key_prefix = key_prefix

    def __repr__(self) -> str:
        return f"DjangoResponseCache({self.alias!r}, ttl={self.ttl})"

    def _backend(self) -> Any:
        from django.core.cache import caches

        return caches[self.alias]

    async def aget(self, key: str) -> CachedAnswer | None:
        """The answer under ``key``, or None (missing, expired, or unreadable).

        Raises: TimeoutError when every cache thread is stuck on an earlier call."""
        result: CachedAnswer | None = await _workers().run(self.get, key)
        return result

    async def aset(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: this cache's ``ttl``).

        Raises: TimeoutError when every cache thread is stuck on an earlier call."""
        life = self.ttl if ttl is None else _check_ttl(ttl, "ttl")
        await _workers().run(self._set, key, value.to_json(), life)

    def _set(self, key: str, text: str, life: float | None) -> None:
        self._backend().set(self.key_prefix + key, text, timeout=life)

    def get(self, key: str) -> CachedAnswer | None:
        """Sync twin of :meth:`aget` (for scripts and management commands)."""
        return _decode(self._backend().get(self.key_prefix + key))

    def set(self, key: str, value: CachedAnswer, ttl: float | None = None) -> None:
        """Sync twin of :meth:`aset`."""
        life = self.ttl if ttl is None else _check_ttl(ttl, "ttl")
        self._backend().set(self.key_prefix + key, value.to_json(), timeout=life)

    async def adelete(self, key: str) -> None:
        """Forget the answer under ``key``."""
        await _workers().run(self._delete, key)

    def _delete(self, key: str) -> None:
        self._backend().delete(self.key_prefix + key)


_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class _Workers:
    """Up to ``size`` daemon threads for blocking cache calls; a call never waits for a thread
    (daemon: a thread stuck on a hung backend never holds up the interpreter's exit)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._busy = 0
        self._threads = 0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on a free thread. Raises: TimeoutError when none is free."""
        with self._lock:
            if self._busy >= self.size:
                raise TimeoutError(f"all {self.size} cache threads wait for the cache backend")
            self._busy += 1
            if self._threads < self._busy:
                self._threads += 1
                threading.Thread(
                    target=self._work, name="creative-services-cache", daemon=True
                ).start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((fn, args, loop, future))
        return await future

    def _work(self) -> None:
        while True:
            fn, args, loop, future = self._jobs.get()
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except Exception as exc:
                outcome = (False, exc)
            finally:
                with self._lock:
                    self._busy -= 1
            with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the caller gave up (its deadline share ran out)
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


_pool: _Workers | None = None
_pool_lock = threading.Lock()
_fork_hook = False


def _workers() -> _Workers:
    global _pool, _fork_hook
    pool = _pool
    if pool is None:
        with _pool_lock:
            if not _fork_hook:
                os.register_at_fork(after_in_child=_forget_workers)
                _fork_hook = True
            if _pool is None:
                _pool = _Workers(WORKERS)
            pool = _pool
    return pool


def _forget_workers() -> None:
    """A forked child has none of its parent's threads."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


def _decode(text: object) -> CachedAnswer | None:
    """A stored value as an answer; None when missing or unreadable (a miss, never an error)."""
    if not isinstance(text, str | bytes):
        return None
    try:
        return CachedAnswer.from_json(text)
    except ValueError:
        return None
