"""DjangoUsageTracker: one ``LLMUsage`` row per call, written durably and off the event loop."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any, Unpack

from creative_services.contrib.django import _watch
from creative_services.contrib.django._spool import Mark, Spool, SpoolFile, fingerprint
from creative_services.contrib.django.conf import DEFAULT_LLM_MODEL, conf
from creative_services.tracking import BaseUsageTracker, UsageFields
from creative_services.types import UsageRecord

__all__ = ["DjangoUsageTracker", "backoff_delay", "unwritten"]

MAX_BACKOFF = 30.0
"""Seconds, at most, between two attempts to write a batch while the database is down."""

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


def backoff_delay(attempt: int, base: float, cap: float = MAX_BACKOFF) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (0-based): doubling from ``base``, capped."""
    return float(min(cap, max(base, 0.001) * 2 ** min(attempt, 32)))


def unwritten(records: Iterable[UsageRecord], written: Iterable[str]) -> list[UsageRecord]:
    """``records`` less those whose ``request_id`` is in ``written`` and less repeats of one
    ``request_id`` (a record without one is always kept)."""
    seen = set(written)
    kept = []
    for record in records:
        key = record.request_id
        if key:
            if key in seen:
                continue
            seen.add(key)
        kept.append(record)
    return kept


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

    ``batch=True`` hands records to a background thread that writes them every
    ``flush_interval`` seconds or ``batch_size`` records, with one ``COPY`` on PostgreSQL
    (psycopg 3) and ``bulk_create`` elsewhere. Before ``record()`` returns, the record is in
    this process's local spool (``CREATIVE_SERVICES_USAGE_SPOOL``, a memory-mapped file): it
    survives
    SIGTERM and SIGKILL, and the next writer on the same spool folder writes what a dead process
    left, each ``request_id`` once. While the database is down the writer retries with backoff
    (doubling from ``retry_delay`` up to 30 s) and never gives up; when the spool holds
    ``CREATIVE_SERVICES_USAGE_SPOOL_MAX_BYTES`` of records, ``record()`` raises
    :class:`~creative_services.exceptions.UsageSpoolFullError`. A batch that fails for another
    reason than a transient error is written record by record, so one bad record does not sink
    the others (only such a record lands in :attr:`failed`). :meth:`flush` waits for the
    spool, and it is flushed at exit. A batched record without a ``request_id`` gets one.
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
        self._spool: Spool | None = None
        self._spool_lock = threading.Lock()
        self._leftover: SpoolFile | None = None
        self._leftovers_done = False
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
        if self._spool is not None:
            self._spool.abandon()  # the parent's file, still the parent's to drain
        self._spool = None
        self._spool_lock = threading.Lock()
        self._leftover = None
        self._leftovers_done = False
        self.failed = deque(maxlen=self.failed.maxlen)  # the parent retries its own
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._in_flight = 0
        self._flushers = 0
        self._stopping = False
        self._writer = None

    def __repr__(self) -> str:
        return f"DjangoUsageTracker(using={self.using!r}, batch={self.batch})"

    @property
    def pending(self) -> int:
        """Records accepted in batch mode and not written yet: this process's spool (or memory
        queue), plus what is left of a dead process's spool while the writer drains it."""
        source = self._spool if self._spool is not None else self._queue
        leftover = self._leftover
        return len(source) + (len(leftover) if leftover is not None else 0)

    @property
    def spool_path(self) -> Path | None:
        """This process's spool file, once batch mode has opened it."""
        spool = self._spool
        return None if spool is None else spool.path

    # --- entry points ------------------------------------------------------------------------

    def record(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Store one call's usage and return the record. Raises on storage failure."""
        if self.batch and not fields.get("request_id"):
            fields["request_id"] = uuid.uuid4().hex  # the key that makes a rewrite harmless
        return super().record(**fields)

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
        """Store the record from async code: spooled in batch mode, else written in a thread."""
        if self.batch:
            return self.record(**fields)  # a local append; the ORM is not touched here
        record = UsageRecord(**fields)  # type: ignore[arg-type]  # cost is normalised there
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

    def _insert(self, records: Sequence[UsageRecord]) -> None:
        """One ``INSERT`` (one record) or one ``COPY``/``bulk_create`` (several)."""
        from django.db import connections

        from creative_services.contrib.django.models import LLMUsage

        alias = self._alias()
        values = [self._values(record) for record in records]
        if len(values) == 1:
            LLMUsage(**values[0]).save(using=alias, force_insert=True)
        elif values and not _copy(connections[alias], values):
            LLMUsage.objects.using(alias).bulk_create([LLMUsage(**v) for v in values])

    def _reset_connection(self) -> None:
        from django.db import connections

        conn = connections[self._alias()]
        if not conn.in_atomic_block:
            conn.close()  # a broken connection is reopened by the next attempt

    def _write(self, records: Sequence[UsageRecord], *, raise_errors: bool) -> None:
        from django.db import InterfaceError, OperationalError

        error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                self._insert(records)
                return
            except (OperationalError, InterfaceError) as exc:
                error = exc
                self._reset_connection()
                if attempt < self.retries:
                    time.sleep(self.retry_delay * 2**attempt)
            except Exception as exc:
                if len(records) > 1:  # one bad record must not sink the batch
                    for record in records:
                        self._write([record], raise_errors=False)
                    return
                error = exc
                break
        self._give_up(records, error)
        if raise_errors and error is not None:
            raise error

    def _give_up(self, records: Sequence[UsageRecord], error: Exception | None) -> None:
        self.failed.extend(records)
        for record in records:
            _log().error(
                "usage_record_failed",
                tracker=type(self).__name__,
                error=repr(error),
                record={f.name: getattr(record, f.name) for f in fields(record)},
            )

    def _written_ids(self, records: Sequence[UsageRecord]) -> list[str]:
        """The ``request_id`` values of ``records`` that already have a row."""
        from creative_services.contrib.django.models import LLMUsage

        keys = list({r.request_id for r in records if r.request_id})
        if not keys:
            return []
        rows = LLMUsage.objects.using(self._alias()).filter(request_id__in=keys)
        return list(rows.values_list("request_id", flat=True))

    def _deliver(self, records: Sequence[UsageRecord], *, maybe_written: bool) -> None:
        """Write a batch from the spool, retrying transient errors until it is written.

        ``maybe_written``: an earlier attempt (this process's, or a dead one's) may have
        committed it; rows whose ``request_id`` is in the table already are then skipped.
        """
        from django.db import InterfaceError, OperationalError

        attempt = 0
        while True:
            try:
                todo = unwritten(records, self._written_ids(records)) if maybe_written else records
                self._insert(todo)
                return
            except (OperationalError, InterfaceError) as exc:
                self._reset_connection()
                delay = backoff_delay(attempt, self.retry_delay)
                if attempt >= self.retries:
                    _log().warning(
                        "usage_write_retry", tracker=type(self).__name__, error=repr(exc),
                        attempt=attempt + 1, retry_in_s=delay, pending=self.pending,
                    )  # fmt: skip
                time.sleep(delay)
                attempt += 1
                maybe_written = True  # the commit may have happened before the error
            except Exception as exc:
                if len(records) > 1:  # one bad record must not sink the batch
                    for record in records:
                        self._deliver([record], maybe_written=maybe_written)
                    return
                self._give_up(records, exc)
                return

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
    # Callers append to the spool (a copy into its memory-mapped file, under the spool's lock,
    # which the writer takes to mark written records) or, without a spool, to a deque (atomic in
    # CPython, no lock), and set an Event once a batch is full. The writer reads a batch under
    # ``_cond``, counts it in ``_in_flight`` until written, and only then deletes it from the
    # spool; ``flush()`` waits, under the same lock, until nothing is pending or in flight.

    def _open_spool(self) -> Spool | None:
        spool = self._spool
        if spool is not None:
            return spool
        from django.db import connections

        directory = conf.USAGE_SPOOL
        if directory is None:
            return None
        with self._spool_lock:
            if self._spool is None:
                target = directory / fingerprint(connections[self._alias()].settings_dict)
                self._spool = Spool(target, conf.USAGE_SPOOL_MAX_BYTES)
            return self._spool

    def _enqueue(self, record: UsageRecord) -> None:
        spool = self._spool or self._open_spool()
        if spool is not None:
            while not spool.append(record):  # closed by close() meanwhile: open another
                self._spool = None
                spool = self._open_spool()
                assert spool is not None
            full = len(spool) >= self.batch_size
        else:
            queue = self._queue
            queue.append(record)
            full = len(queue) >= self.batch_size
        if full and not self._wake.is_set():
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

    def _take(self) -> tuple[list[UsageRecord], Mark | None]:
        """The next batch, and the spool mark to release once it is written."""
        spool = self._spool
        if spool is None:
            queue = self._queue
            return [queue.popleft() for _ in range(min(len(queue), self.batch_size))], None
        return spool.take(self.batch_size)

    def _drain_leftovers(self) -> None:
        """Write what dead processes left in this spool folder (some may be written already)."""
        spool = self._spool
        if spool is None:
            return
        for leftover in spool.leftovers():
            self._leftover = leftover
            _log().info("usage_spool_leftover", path=str(leftover.path), rows=len(leftover))
            while True:
                records, mark = leftover.take(self.batch_size)
                if mark is None:
                    break
                self._deliver(records, maybe_written=True)
                leftover.release(mark)
            leftover.close(delete_if_empty=True)
            self._leftover = None

    def _run_writer(self) -> None:
        from django.db import close_old_connections, connections

        try:
            self._drain_leftovers()
            with self._cond:
                self._leftovers_done = True
                self._cond.notify_all()
            while True:
                if self._batch_waits():
                    self._wake.wait(self.flush_interval)
                self._wake.clear()
                with self._cond:
                    batch, mark = self._take()
                    self._in_flight = len(batch)
                    if not batch and mark is None:
                        self._cond.notify_all()
                        if self._stopping:
                            return
                        continue
                try:
                    self._deliver(batch, maybe_written=False)
                    if mark is not None and self._spool is not None:
                        self._spool.release(mark)
                except BaseException:
                    if self._spool is not None:
                        self._spool.rewind()  # still unwritten: the next writer reads it again
                    raise
                finally:
                    close_old_connections()
                    with self._cond:
                        self._in_flight = 0
                        self._cond.notify_all()
        finally:
            connections.close_all()

    def _batch_waits(self) -> bool:
        """Whether the writer should wait for more records before the next batch."""
        source = self._spool if self._spool is not None else self._queue
        return len(source) < self.batch_size and not self._flushers and not self._stopping

    def _drained(self) -> bool:
        spool = self._spool
        if spool is not None:
            return self._leftovers_done and not len(spool) and not self._in_flight
        return not self._queue and not self._in_flight

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every pending record is written (or kept in :attr:`failed`), leftovers of
        dead processes in the spool folder included. Returns False when ``timeout`` ran out first
        (the records stay in the spool: nothing is dropped).
        """
        if self.batch and not self._leftovers_done:
            self._open_spool()  # a new process: dead processes may have left records
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
        """Flush, then stop the batch writer thread (it starts again if records come).

        Once everything is written, this process's spool file is deleted; what could not be
        written stays in it for the next process.
        """
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            writer = self._writer
        self._wake.set()
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout)
        atexit.unregister(self.close)
        with self._spool_lock:
            spool = self._spool
            if spool is not None and (writer is None or not writer.is_alive()):
                self._spool = None  # leftovers were drained once: a reopened spool needs not
                spool.close(delete_if_empty=True)
