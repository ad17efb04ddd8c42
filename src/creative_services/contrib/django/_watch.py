"""Process-local snapshots of LLM tables, kept fresh by one background thread.

Lookups only read a snapshot from memory: no query, no ORM call, so they are safe on an event
loop and cost nothing per call. A daemon thread (``creative-services-registry``) checks each
table every ``CREATIVE_SERVICES_REGISTRY_CHECK_INTERVAL`` seconds (0.5 by default), on one
persistent connection of its own per database (see :mod:`._watch_db`: never Django's per-request
connection, so ``CONN_MAX_AGE=0`` does not open a session per check), each check bounded by
``CREATIVE_SERVICES_REGISTRY_QUERY_TIMEOUT`` (5 s) on the client side:

- *stamp* mode, when the version triggers are installed on the table (the shipped model, on
  PostgreSQL and SQLite): one ``SELECT version`` of the stamp row; the table is read again only
  when the stamp changed. Read the stamp first, then the rows, so a snapshot is never older than
  the stamp it is filed under.
- *poll* mode, for any other table (a legacy ``Llms`` model, other databases): the table is read
  and compared with the last rows read; a difference rebuilds the snapshot.

A change is therefore in use everywhere at most one interval plus one query after it commits.
A check that fails or does not answer in time keeps the last snapshot in use; once it is older than
``max(5 intervals, 5 s)`` the watcher logs ``llm_registry_stale`` (with its age) each check
interval, at least 1 s apart, until a check succeeds, and the system check ``W007`` reports it.
``post_save``/``post_delete`` of a watched model also invalidate this process's snapshot when the
transaction commits, and the next lookup waits for the reload: a process reads its own ORM writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from typing import Any

from creative_services.contrib.django._rows import (
    Snapshot,
    build_snapshot,
    columns,
    fetch_rows,
    zero_price_is_unknown,
)
from creative_services.contrib.django._watch_db import DbThread
from creative_services.contrib.django.conf import conf
from creative_services.contrib.django.triggers import STAMP_TABLE, has_triggers
from creative_services.exceptions import ConfigurationError

__all__ = ["Source", "invalidate_model", "peek_entry", "source_for", "stale_sources", "stop"]

_UNSET: Any = object()
STALE_AFTER_MIN = 5.0
"""A snapshot not checked for max(5 check intervals, this many seconds) is logged as stale."""
STALE_LOG_EVERY = 60.0
"""Seconds between two ``llm_registry_stale`` warnings of lookups (the watcher is silent)."""
STALE_REPORT_MIN = 1.0
"""The watcher's ``llm_registry_stale`` lines come each check interval, but at least this apart."""
_lock = threading.RLock()
_sources: dict[tuple[str, str], Source] = {}
_watcher: _Watcher | None = None
_fork_hook_installed = False
epoch = 0
"""Bumped by :func:`stop`: registries drop the sources they cached."""


def loop_running() -> bool:
    """Whether this thread is running an event loop (an async view, ``await generate()``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _log() -> Any:
    from creative_services._log import get_logger

    return get_logger()


class Source:
    """One table on one database: its current snapshot and how to refresh it."""

    def __init__(self, model: Any, alias: str) -> None:
        self.model = model
        self.alias = alias
        self.snapshot: Snapshot | None = None
        self.error: BaseException | None = None
        self.stamped: bool | None = None
        """True when the version triggers are installed (stamp mode); None until known."""
        self.fresh = threading.Event()
        self.next_check = 0.0
        self.checked_at: float | None = None
        """``time.monotonic()`` of the last successful check; None before the first."""
        self.created_at = time.monotonic()
        self.stale_after = max(5 * conf.REGISTRY_CHECK_INTERVAL, STALE_AFTER_MIN)
        self._stale_logged = -STALE_LOG_EVERY
        self._stale_lock = threading.Lock()
        self._generation = 0
        self._token: Any = _UNSET

    def __repr__(self) -> str:
        return f"<Source {self.model._meta.label} on {self.alias!r}>"

    def current(self) -> Snapshot:
        """The snapshot; waits for a pending (re)load. Raises: ConfigurationError."""
        snap = self.snapshot
        checked = self.checked_at
        if checked is not None and time.monotonic() - checked > self.stale_after:
            self.warn_stale(STALE_LOG_EVERY)  # say so if the watcher cannot; serve from memory
        if snap is not None and self.fresh.is_set():
            return snap  # the steady state: a few attribute reads and a clock read
        if snap is None and self.fresh.is_set():
            self.invalidate()  # the last load failed: try again now
        else:
            _ensure_watcher().wake()
        if snap is not None and loop_running():
            # Never block an event loop for a reload: the previous snapshot serves this lookup
            # (at most one check interval old) while the watcher reloads.
            return snap
        self.fresh.wait(conf.REGISTRY_LOAD_TIMEOUT)
        snap = self.snapshot
        if snap is None:
            reason = repr(self.error) if self.error else "timed out"
            raise ConfigurationError(
                f"the LLM registry ({self.model._meta.label} on database {self.alias!r}) could "
                f"not be loaded: {reason}"
            ) from self.error
        return snap

    def stale_for(self) -> float | None:
        """Seconds since the last successful check (or since this source exists, before the
        first) when more than ``stale_after``; None while fresh. No I/O."""
        age = time.monotonic() - (self.checked_at or self.created_at)
        return age if age > self.stale_after else None

    def warn_stale(self, every: float) -> None:
        """Log ``llm_registry_stale`` when stale, unless logged less than ``every`` s ago."""
        if not self._stale_lock.acquire(blocking=False):
            return  # another thread is logging it right now
        try:
            age, now = self.stale_for(), time.monotonic()
            if age is None or now - self._stale_logged < every:
                return
            self._stale_logged = now
        finally:
            self._stale_lock.release()
        _log().warning(
            "llm_registry_stale",
            model=self.model._meta.label,
            database=self.alias,
            age_s=round(age, 1),
            error=repr(self.error) if self.error else None,
            keeping="the last snapshot" if self.snapshot else "nothing",
        )

    def timed_out(self, timeout: float) -> None:
        """The watcher gave up waiting for this source's check (runs in the watcher thread)."""
        if self.error is None:
            self.error = TimeoutError(f"no answer from the database within {timeout:g} s")
            _log().warning(
                "llm_registry_check_failed",
                model=self.model._meta.label,
                database=self.alias,
                error=repr(self.error),
                keeping="the last snapshot" if self.snapshot else "nothing",
            )

    def invalidate(self) -> None:
        """Make the next lookup wait for a reload, and start it now."""
        with _lock:
            self._generation += 1
            self.fresh.clear()
        _ensure_watcher().wake()

    def check(self, db: DbThread) -> None:
        """Reload when the table changed (runs in ``db``'s thread only)."""
        with _lock:
            generation = self._generation
        forced = not self.fresh.is_set()
        conn: Any = None
        try:
            conn = db.connection(self.alias)
            _limit_statements(conn)
            if self.stamped is None:
                self.stamped = has_triggers(conn, self.model._meta.db_table)
            cols = columns(self.model)
            zero = zero_price_is_unknown(self.model)
            if self.stamped:
                token = _read_stamp(conn)
                if forced or token != self._token:
                    rows = fetch_rows(self.model, self.alias)
                    self._install(build_snapshot(cols, rows, zero_is_unknown=zero), token)
            else:
                rows = fetch_rows(self.model, self.alias)
                if forced or rows != self._token:
                    self._install(build_snapshot(cols, rows, zero_is_unknown=zero), rows)
        except Exception as exc:
            if self.error is None:
                _log().warning(
                    "llm_registry_check_failed",
                    model=self.model._meta.label,
                    database=self.alias,
                    error=repr(exc),
                    keeping="the last snapshot" if self.snapshot else "nothing",
                )
            self.error, self._token, self.stamped = exc, _UNSET, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()  # the next check reconnects
        else:
            if self.error is not None:
                _log().info("llm_registry_check_recovered", model=self.model._meta.label)
            self.error = None
            self.checked_at = time.monotonic()
            self.stale_after = max(5 * conf.REGISTRY_CHECK_INTERVAL, STALE_AFTER_MIN)
            with contextlib.suppress(Exception):
                conn.close_if_unusable_or_obsolete()  # after an error; never for its age
        with _lock:
            if self._generation == generation:
                self.fresh.set()

    def _install(self, snapshot: Snapshot, token: Any) -> None:
        if snapshot.problems and (
            self.snapshot is None or self.snapshot.problems != snapshot.problems
        ):
            for problem in snapshot.problems:
                _log().error("llm_entry_unusable", model=self.model._meta.label, problem=problem)
        self.snapshot, self._token = snapshot, token


_limited: dict[str, Any] = {}
"""The driver connection per alias whose ``statement_timeout`` is set (watcher thread only)."""


def _limit_statements(conn: Any) -> None:
    """Set ``statement_timeout`` on the watcher's PostgreSQL connection, once per connection:
    a lock wait ends on the server too, not only on our side."""
    if conn.vendor != "postgresql":
        return
    conn.ensure_connection()
    raw = conn.connection
    if _limited.get(conn.alias) is raw:
        return
    milliseconds = max(1, int(conf.REGISTRY_QUERY_TIMEOUT * 1000))
    with conn.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {milliseconds}")
    _limited[conn.alias] = raw


def _read_stamp(conn: Any) -> Any:
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT version FROM {conn.ops.quote_name(STAMP_TABLE)} WHERE id = 1"  # noqa: S608
        )
        row = cursor.fetchone()
    return row[0] if row else 0


class _Watcher:
    """The daemon thread that runs :meth:`Source.check` for every source when it is due."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name="creative-services-registry", daemon=True
        )

    def wake(self) -> None:
        """Check the sources that wait for a reload now."""
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Stop the thread; its database thread closes the connections on the way out."""
        self._stop.set()
        self._wake.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self) -> None:
        db = DbThread()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                interval = conf.REGISTRY_CHECK_INTERVAL
                for source in list(_sources.values()):
                    if self._stop.is_set():
                        break
                    started = time.monotonic()
                    if not source.fresh.is_set() or started >= source.next_check:
                        source.next_check = started + interval
                        self._check(db, source)
                        source.warn_stale(max(interval, STALE_REPORT_MIN))
                due = min((s.next_check for s in list(_sources.values())), default=None)
                wait = interval if due is None else due - time.monotonic()
                self._wake.wait(max(0.0, wait))
        finally:
            db.stop(5.0)
            _limited.clear()

    @staticmethod
    def _check(db: DbThread, source: Source) -> None:
        """One check of ``source`` in the database thread, waited for at most the query timeout
        (then aborted); skipped while an aborted check is still on its way out."""
        timeout = conf.REGISTRY_QUERY_TIMEOUT
        if not db.run(lambda: source.check(db), timeout):
            source.timed_out(timeout)


def _ensure_watcher() -> _Watcher:
    global _watcher, _fork_hook_installed
    watcher = _watcher
    if watcher is not None and watcher.thread.is_alive():
        return watcher
    with _lock:
        if _watcher is None or not _watcher.thread.is_alive():
            if not _fork_hook_installed:
                os.register_at_fork(after_in_child=_after_fork)
                _fork_hook_installed = True
            _watcher = _Watcher()
            _watcher.thread.start()
        return _watcher


def _after_fork() -> None:
    """A forked child has no watcher thread: start from scratch there."""
    global _watcher, _lock, epoch
    _lock = threading.RLock()
    _watcher = None
    _sources.clear()
    _limited.clear()
    epoch += 1


def source_for(model: Any, alias: str) -> Source:
    """The source of ``model`` on ``alias``, created (and the watcher started) on first use."""
    key = (model._meta.label_lower, alias)
    source = _sources.get(key)
    if source is None or source.model is not model:
        with _lock:
            source = _sources.get(key)
            if source is None or source.model is not model:
                source = _sources[key] = Source(model, alias)
        _ensure_watcher().wake()
    return source


def stale_sources() -> list[tuple[Source, float]]:
    """The sources of this process whose snapshot is stale, with its age in seconds (no I/O)."""
    found = []
    for source in list(_sources.values()):
        age = source.stale_for()
        if age is not None:
            found.append((source, age))
    return found


def peek_entry(label: str, llm_id: int) -> Any:
    """The entry with this id in an already loaded snapshot of ``label``, else None (no I/O)."""
    label = label.lower()
    for (key_label, _), source in list(_sources.items()):
        snap = source.snapshot
        if key_label == label and snap is not None and llm_id in snap.by_id:
            return snap.by_id[llm_id]
    return None


def invalidate_model(sender: Any, using: str | None = None, **_: Any) -> None:
    """``post_save``/``post_delete`` receiver: reload this process's snapshots on commit."""
    label = getattr(getattr(sender, "_meta", None), "label_lower", None)
    if label is None or not any(key[0] == label for key in list(_sources)):
        return
    from django.db import transaction

    def invalidate() -> None:
        for (key_label, _), source in list(_sources.items()):
            if key_label == label:
                source.invalidate()

    transaction.on_commit(invalidate, using=using)


def stop(timeout: float = 5.0) -> None:
    """Stop the watcher thread (closing its connections) and forget every snapshot.

    For tests (before the test database is dropped) and orderly shutdown; the next lookup
    starts again from scratch.
    """
    global _watcher, epoch
    with _lock:
        watcher, _watcher = _watcher, None
        _sources.clear()
        epoch += 1
    if watcher is not None:
        watcher.stop(timeout)
