"""DjangoUsageTracker: one ``LLMUsage`` row per call, written durably and off the event loop."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import fields
from functools import partial
from typing import Any, Unpack

from creative_services.contrib.django import _watch
from creative_services.contrib.django.conf import DEFAULT_LLM_MODEL, conf
from creative_services.tracking import BaseUsageTracker, UsageFields
from creative_services.types import UsageRecord

__all__ = ["DjangoUsageTracker"]

_executor_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="creative-services-usage"
            )
        return _executor


_trackers: weakref.WeakSet[DjangoUsageTracker] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child (gunicorn --preload, Celery prefork) inherits the worker pool, each
    tracker's writer thread, lock and queue, but none of their threads: ``arecord`` and batch
    mode would hang there. Forget them all, so the child starts its own on first use. The parent's
    pending records are dropped in the child (the parent still writes them: never twice)."""
    global _executor_lock, _executor
    _executor_lock = threading.Lock()
    _executor = None  # its threads are gone; never shut down (it would wait for them)
    for tracker in list(_trackers):
        tracker._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _log() -> Any:
    from creative_services._log import get_logger

    return get_logger()


_NOT_JSON: Any = object()


def _copy(connection: Any, rows: Sequence[dict[str, Any]]) -> bool:
    """Insert ``rows`` (``LLMUsage`` values by attname) with one PostgreSQL ``COPY``.

    Several times cheaper than ``bulk_create`` (no model instances, no per-field SQL
    compilation, no array quoting in Python). Returns False, having done nothing, when the
    database is not PostgreSQL driven by psycopg 3; the caller then uses ``bulk_create``.
    """
    if connection.vendor != "postgresql":
        return False
    import json

    from django.db.models import JSONField

    from creative_services.contrib.django.models import LLMUsage

    meta = LLMUsage._meta
    targets = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(f.column) for f in targets)}) FROM STDIN"
    plan = [
        (f.attname, f.get_default(), f.encoder if isinstance(f, JSONField) else _NOT_JSON)
        for f in targets
    ]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the driver's cursor: psycopg 3 has ``copy()``, psycopg2 has not
        if not hasattr(raw, "copy"):
            return False
        # The driver's errors become Django's (OperationalError is retried, the rest isolated).
        with connection.wrap_database_errors, raw.copy(sql) as copy:
            for row in rows:
                values = []
                for name, default, encoder in plan:
                    value = row.get(name, default)
                    if encoder is not _NOT_JSON and value is not None:
                        value = json.dumps(value, cls=encoder)
                    values.append(value)
                copy.write_row(values)
    return True


class DjangoUsageTracker(BaseUsageTracker):
    """Writes each :class:`~creative_services.types.UsageRecord` to the ``LLMUsage`` table.

    ``record(llm_id=1, user_id=7, prompt_tokens=100, completion_tokens=500, cost=0.001)``
    stores cost ``Decimal("0.001")`` (a float cost is taken as the decimal it prints as).
    Inside ``transaction.atomic`` the row is written when the transaction commits (and not at all
    if it rolls back). ``arecord`` writes in a worker thread, never on the event loop.
    Transient database errors (``OperationalError``, ``InterfaceError``) are retried
    ``retries`` times; a record that still cannot be written is logged
    (``usage_record_failed``) and kept in :attr:`failed` (see :meth:`retry_failed`).

    ``batch=True`` queues records in memory and a background thread writes them every
    ``flush_interval`` seconds or ``batch_size`` records, with one ``COPY`` on PostgreSQL
    (psycopg 3) and ``bulk_create`` elsewhere; ``record()`` then only appends to a queue (about
    10 µs). A batch that fails for another reason than a transient error is written record by
    record, so one bad record does not sink the others. :meth:`flush` waits for the queue, and
    it is flushed at exit.
    """

    def __init__(
        self,
        *,
        using: str | None = None,
        batch: bool = False,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        retries: int = 3,
        retry_delay: float = 0.05,
        max_failed: int = 10_000,
    ) -> None:
        self.using = using
        self.batch = batch
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.retries = retries
        self.retry_delay = retry_delay
        self.failed: deque[UsageRecord] = deque(maxlen=max_failed)
        """Records that could not be written after retries (oldest dropped past max_failed)."""
        self._queue: deque[UsageRecord] = deque()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._in_flight = 0
        self._flushers = 0
        self._stopping = False
        self._writer: threading.Thread | None = None
        _trackers.add(self)

    def _reset_after_fork(self) -> None:
        """In a forked child: new lock, queue and no writer; the parent's records stay its own."""
        self._queue = deque()
        self.failed = deque(maxlen=self.failed.maxlen)  # the parent retries its own
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._in_flight = 0
        self._flushers = 0
        self._stopping = False
        self._writer = None

    def __repr__(self) -> str:
        return f"DjangoUsageTracker(using={self.using!r}, batch={self.batch})"

    # --- entry points ------------------------------------------------------------------------

    def _store(self, record: UsageRecord) -> None:
        from django.db import connections, transaction

        alias = self._alias()
        if connections[alias].in_atomic_block:
            transaction.on_commit(partial(self._after_commit, record), using=alias)
        elif self.batch:
            self._enqueue(record)
        elif _watch.loop_running():  # the ORM refuses to run on an event loop thread
            _pool().submit(self._write_in_thread, [record]).result()
        else:
            self._write([record], raise_errors=True)

    async def arecord(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Store the record from async code: queued in batch mode, else written in a thread."""
        record = UsageRecord(**fields)  # type: ignore[arg-type]  # cost is normalised there
        if self.batch:
            self._enqueue(record)
        else:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(_pool(), self._write_in_thread, [record])
        return record

    def _after_commit(self, record: UsageRecord) -> None:
        if self.batch:
            self._enqueue(record)
        else:
            self._write([record], raise_errors=False)  # the commit already happened: never raise

    # --- writing -----------------------------------------------------------------------------

    def _alias(self) -> str:
        if self.using is not None:
            return self.using
        from django.db import router

        from creative_services.contrib.django.models import LLMUsage

        return str(router.db_for_write(LLMUsage))

    def _write_in_thread(self, records: list[UsageRecord]) -> None:
        from django.db import close_old_connections

        try:
            self._write(records, raise_errors=True)
        finally:
            close_old_connections()  # our own thread: honour CONN_MAX_AGE like a request would

    def _write(self, records: Sequence[UsageRecord], *, raise_errors: bool) -> None:
        from django.db import InterfaceError, OperationalError, connections

        from creative_services.contrib.django.models import LLMUsage

        alias = self._alias()
        error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                values = [self._values(record) for record in records]
                if len(values) == 1:
                    LLMUsage(**values[0]).save(using=alias, force_insert=True)
                elif not _copy(connections[alias], values):
                    LLMUsage.objects.using(alias).bulk_create([LLMUsage(**v) for v in values])
                return
            except (OperationalError, InterfaceError) as exc:
                error = exc
                conn = connections[alias]
                if not conn.in_atomic_block:
                    conn.close()  # a broken connection is reopened by the next attempt
                if attempt < self.retries:
                    time.sleep(self.retry_delay * 2**attempt)
            except Exception as exc:
                if len(records) > 1:  # one bad record must not sink the batch
                    for record in records:
                        self._write([record], raise_errors=False)
                    return
                error = exc
                break
        self.failed.extend(records)
        for record in records:
            _log().error(
                "usage_record_failed",
                tracker=type(self).__name__,
                error=repr(error),
                record={f.name: getattr(record, f.name) for f in fields(record)},
            )
        if raise_errors and error is not None:
            raise error

    def _values(self, record: UsageRecord) -> dict[str, Any]:
        """The ``LLMUsage`` field values (by attname) of one record."""
        from django.conf import settings
        from django.utils import timezone

        label = conf.LLM_MODEL
        name, provider, model, tier = record.entry_name, record.provider, record.model, record.tier
        if record.llm_id is not None and not (name and provider and model and tier):
            entry = _watch.peek_entry(label, record.llm_id)  # memory only, no query
            if entry is not None:
                name, provider = name or entry.name, provider or entry.provider
                model, tier = model or entry.model_name, tier or entry.tier.value
        created = record.created_at
        if not settings.USE_TZ and timezone.is_aware(created):
            created = timezone.make_naive(created)
        return dict(
            llm_id=record.llm_id if label.lower() == DEFAULT_LLM_MODEL.lower() else None,
            llm_ref=record.llm_id,
            entry_name=name or "",
            provider=provider or "",
            model=model or "",
            tier=tier or "",
            user_id=None if record.user_id is None else str(record.user_id),
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            reasoning_tokens=record.reasoning_tokens,
            cached_tokens=record.cached_tokens,
            cost=record.cost,
            cost_source=record.cost_source,
            latency_ms=record.latency_ms,
            outcome=record.outcome,
            error_class=record.error_class or "",
            attempts=record.attempts,
            usage_estimated=record.usage_estimated,
            may_have_been_billed=record.may_have_been_billed,
            cache_hit=record.cache_hit,
            request_id=record.request_id,
            metadata=dict(record.metadata),
            created_at=created,
        )

    def retry_failed(self) -> int:
        """Try to write the records kept in :attr:`failed` again; return how many still fail."""
        records = list(self.failed)
        self.failed.clear()
        for start in range(0, len(records), self.batch_size):
            self._write(records[start : start + self.batch_size], raise_errors=False)
        return len(self.failed)

    # --- batch mode --------------------------------------------------------------------------
    #
    # Callers only append to a deque (atomic in CPython: no lock, so a caller never waits for
    # the writer) and set an Event once a batch is full. The writer pops batches under
    # ``_cond`` and counts them in ``_in_flight`` until written; ``flush()`` waits, under the
    # same lock, until the queue is empty and nothing is in flight.

    def _enqueue(self, record: UsageRecord) -> None:
        queue = self._queue
        queue.append(record)
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()
        writer = self._writer
        if writer is None or not writer.is_alive():
            self._start_writer()

    def _start_writer(self) -> None:
        with self._cond:
            if self._writer is not None and self._writer.is_alive():
                return
            self._stopping = False
            self._writer = threading.Thread(
                target=self._run_writer, name="creative-services-usage-writer", daemon=True
            )
            self._writer.start()
        atexit.register(self.close)

    def _run_writer(self) -> None:
        from django.db import close_old_connections, connections

        queue = self._queue
        try:
            while True:
                if len(queue) < self.batch_size and not self._flushers and not self._stopping:
                    self._wake.wait(self.flush_interval)
                self._wake.clear()
                with self._cond:
                    batch = [queue.popleft() for _ in range(min(len(queue), self.batch_size))]
                    self._in_flight = len(batch)
                    if not batch:
                        self._cond.notify_all()
                        if self._stopping:
                            return
                        continue
                try:
                    self._write(batch, raise_errors=False)
                finally:
                    close_old_connections()
                    with self._cond:
                        self._in_flight = 0
                        self._cond.notify_all()
        finally:
            connections.close_all()

    def _drained(self) -> bool:
        return not self._queue and not self._in_flight

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued record is written (or kept in :attr:`failed`).

        Returns False when ``timeout`` ran out first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:  # an RLock: _start_writer may take it again
            self._flushers += 1
            try:
                while not self._drained():
                    writer = self._writer
                    if writer is None or not writer.is_alive():
                        self._start_writer()  # a record came as the writer was stopping
                    self._wake.set()
                    remaining = 0.1 if deadline is None else deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, 0.1))
                return True
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush, then stop the batch writer thread (it starts again if records come)."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            writer = self._writer
        self._wake.set()
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout)
        atexit.unregister(self.close)
