"""The budget's threads: a small pool for the ORM work of the async methods, and the one thread
that retries settles the database did not take.

Settles are retried with backoff (0.25 s doubling up to 30 s) until the database takes them; a
settle is idempotent (it deletes its lease row first), so a retry of one that did commit after
all, or that runs while the first attempt is still stuck, changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["in_worker", "pending_settles", "pool", "retry_settle", "stop_budget_workers"]

T = TypeVar("T")
WORKERS = 8
"""Threads (and so at most this many database connections) per process for the async methods."""
RETRY_FIRST, RETRY_MAX = 0.25, 30.0


def _log() -> Any:
    from creative_services._log import get_logger

    return get_logger()


class _Workers:
    """A few daemon threads for the ORM work of the async methods.

    Like ``ThreadPoolExecutor``, but each thread closes its Django connections when it stops,
    so a test database (or a scratch one) can be dropped after :func:`stop_budget_workers`.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Any] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("budget workers are stopped")
            self._jobs.put((future, fn))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._run,
                    name=f"creative-services-budget-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _run(self) -> None:
        from django.db import close_old_connections, connections

        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                future, fn = item
                del item
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn()
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                del future, fn
                with contextlib.suppress(Exception):
                    close_old_connections()  # as at the end of a request: honours CONN_MAX_AGE
                self._idle.release()
        finally:
            connections.close_all()

    def stop(self, timeout: float) -> None:
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


_workers_lock = threading.Lock()
_workers: _Workers | None = None
_fork_hook_installed = False


def pool() -> _Workers:
    """The worker pool of this process (started on first use, again after a fork)."""
    global _workers, _fork_hook_installed
    workers = _workers
    if workers is not None:
        return workers
    with _workers_lock:
        if _workers is None:
            if not _fork_hook_installed:
                os.register_at_fork(after_in_child=_after_fork)
                _fork_hook_installed = True
            _workers = _Workers(WORKERS)
        return _workers


def _after_fork() -> None:
    """A forked child has none of the parent's threads: start a new pool there when needed.
    The parent's pending settles stay the parent's."""
    global _workers, _workers_lock, _retrier
    _workers_lock = threading.Lock()
    _workers = None
    _retrier = _Retrier()


def stop_budget_workers(timeout: float = 5.0) -> None:
    """Stop the worker threads of the async methods; each closes its database connections.

    For tests (before the test database is dropped) and orderly shutdown; the next async call
    starts new threads.
    """
    global _workers
    with _workers_lock:
        workers, _workers = _workers, None
    if workers is not None:
        workers.stop(timeout)
    _retrier.stop(timeout)


async def in_worker(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread; the job finishes even if the awaiting task is cancelled."""
    inner = asyncio.wrap_future(pool().submit(fn))
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.add_done_callback(consume)
        raise


def consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: asyncio does not log it as never retrieved


class _Retrier:
    """One daemon thread, alive while settles wait: each is tried again until it is applied."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: dict[str, tuple[Callable[[], None], float, float]] = {}
        """lease id -> (the settle, when it is due, the next delay)."""
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, lease: str, settle: Callable[[], None]) -> None:
        with self._lock:
            if lease in self._pending:
                return
            self._pending[lease] = (settle, time.monotonic() + RETRY_FIRST, RETRY_FIRST)
            self._stopped = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="creative-services-budget-settle", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def count(self) -> int:
        with self._lock:
            return len(self._pending)

    def stop(self, timeout: float) -> None:
        """Stop retrying (the pending settles are kept and retried after the next ``add``)."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _due(self) -> tuple[str, Callable[[], None], float] | float | None:
        """The next settle to try now; else seconds until one is due; None when none waits."""
        with self._lock:
            if self._stopped or not self._pending:
                self._thread = None
                return None
            lease, (settle, due, delay) = min(self._pending.items(), key=lambda kv: kv[1][1])
            wait = due - time.monotonic()
            return (lease, settle, delay) if wait <= 0 else wait

    def _run(self) -> None:
        from django.db import connections

        try:
            while True:
                self._wake.clear()
                step = self._due()
                if step is None:
                    return
                if isinstance(step, float):
                    self._wake.wait(step)
                    continue
                self._try(*step)
        finally:
            connections.close_all()

    def _try(self, lease: str, settle: Callable[[], None], delay: float) -> None:
        from django.db import connections

        from creative_services.exceptions import BudgetUnavailableError

        try:
            settle()
        except BudgetUnavailableError:
            with self._lock:
                nxt = min(delay * 2, RETRY_MAX)
                self._pending[lease] = (settle, time.monotonic() + delay, nxt)
            connections.close_all()  # a broken connection is not reused
            return
        except Exception as exc:
            _log().error("budget_settle_dropped", lease=lease, error=type(exc).__name__)
        else:
            _log().info("budget_settle_retried", lease=lease)
        with self._lock:
            self._pending.pop(lease, None)


_retrier = _Retrier()


def retry_settle(lease: str, settle: Callable[[], None]) -> None:
    """Try ``settle`` again in the background until it is applied (once per lease)."""
    _retrier.add(lease, settle)


def pending_settles() -> int:
    """How many settles of this process wait for the database to take them."""
    return _retrier.count()
