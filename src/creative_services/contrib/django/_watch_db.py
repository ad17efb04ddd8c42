"""The registry watcher's own database connections, and the one thread that uses them.

The watcher never uses Django's per-request connections: per database alias it keeps ONE
connection of its own, built from the alias's settings with ``CONN_MAX_AGE=None`` (kept across
checks whatever the project's ``CONN_MAX_AGE``; ``0``, Django's default, would open a session per
check) and, on PostgreSQL, ``connect_timeout`` and ``application_name=creative-services-registry``.
Every query runs in one daemon thread (``creative-services-registry-db``). The watcher waits for a
check at most ``CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT`` seconds; then it aborts the check's
connections (shuts their sockets down, so a query on a stalled server fails at once instead of
waiting for an answer that does not come), and the next check reconnects.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["APPLICATION_NAME", "DbThread", "own_settings"]

APPLICATION_NAME = "creative-services-registry"
"""``application_name`` of the watcher's PostgreSQL sessions (see ``pg_stat_activity``)."""


def own_settings(settings_dict: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """The settings of the watcher's own connection to a database with ``settings_dict``.

    Pure. Persistent (``CONN_MAX_AGE=None``); on PostgreSQL a ``connect_timeout`` of ``timeout``
    (whole seconds, at least libpq's 2) and an ``application_name`` unless the project set them.
    """
    options = dict(settings_dict.get("OPTIONS") or {})
    if "postgresql" in str(settings_dict.get("ENGINE", "")):
        options.setdefault("connect_timeout", max(2, math.ceil(timeout)))
        options.setdefault("application_name", APPLICATION_NAME)
    return {**settings_dict, "CONN_MAX_AGE": None, "OPTIONS": options}


class DbThread:
    """Runs the watcher's queries, one job at a time, on connections that only it uses."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._wrappers: dict[str, Any] = {}
        self._fds: list[int] = []
        """Duplicates of the sockets the running job uses: they stay ours to shut down."""
        self._fds_lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._loop, name="creative-services-registry-db", daemon=True
        )
        self.thread.start()

    def connection(self, alias: str) -> Any:
        """This thread's own connection to ``alias``; the ORM in this thread uses it too."""
        wrapper = self._wrappers.get(alias)
        if wrapper is None:
            from django.db import connections
            from django.db.utils import load_backend

            from creative_services.contrib.django.conf import conf

            settings = own_settings(connections.settings[alias], conf.REGISTRY_QUERY_TIMEOUT)
            wrapper = load_backend(settings["ENGINE"]).DatabaseWrapper(settings, alias)
            connections[alias] = wrapper  # thread-local: other threads keep theirs
            self._wrappers[alias] = wrapper
        if wrapper.connection is None:
            wrapper.ensure_connection()
            self._hold(wrapper)
        return wrapper

    def run(self, job: Callable[[], None], timeout: float) -> bool | None:
        """Run ``job`` here and wait ``timeout`` s: True when it ended in time; False when it did
        not (its connections are then aborted); None when the last job still runs."""
        if not self._idle.is_set():
            return None
        self._idle.clear()
        self._jobs.put(job)
        if self._idle.wait(timeout):
            return True
        self.abort()
        return False

    def abort(self) -> None:
        """Shut down the sockets of the running job: its query fails now, not when answered."""
        with self._fds_lock:
            for fd in self._fds:
                with contextlib.suppress(OSError):
                    sock = socket.socket(fileno=fd)
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    finally:
                        sock.detach()  # the descriptor stays ours, closed by _release()

    def stop(self, timeout: float) -> None:
        """End the thread, closing its connections (a stuck query is aborted first)."""
        self._jobs.put(None)
        if not self._idle.wait(min(timeout, 0.5)):
            self.abort()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _hold(self, wrapper: Any) -> None:
        raw = getattr(wrapper, "connection", None)
        fileno = getattr(raw, "fileno", None)
        if fileno is None:
            return  # SQLite: a file, nothing on the wire to stall
        with contextlib.suppress(Exception), self._fds_lock:
            self._fds.append(os.dup(fileno()))

    def _release(self) -> None:
        with self._fds_lock:
            fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _loop(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                for wrapper in self._wrappers.values():
                    if wrapper.connection is not None:
                        self._hold(wrapper)
                try:
                    job()
                except Exception:  # noqa: S110 - a job logs its own failures
                    pass
                finally:
                    self._release()
                    self._idle.set()
        finally:
            for wrapper in self._wrappers.values():
                with contextlib.suppress(Exception):
                    wrapper.close()
            self._release()
            self._idle.set()
