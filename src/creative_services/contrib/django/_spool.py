"""The batched usage tracker's local spool: a record survives SIGKILL once ``record()`` returns.

One file per process, memory-mapped (``MAP_SHARED``): appending a record is a copy into the
operating system's page cache, which outlives the process however it dies (not the machine:
nothing is fsynced). No system call on the caller's path, so ``record()`` never gives the GIL
away to the writer thread. The owner holds an exclusive ``flock`` on a ``.lock`` file beside it
for its whole life; the kernel releases it when the process dies, so a file whose lock can be
taken is a dead process's leftover, which the next writer drains::

    <CREATIVE_SERVICES_USAGE_SPOOL>/<database fingerprint>/<pid>-<random>.spool (+ .lock)

The file is a ring: a 4 KiB header (the field names, in the order records store their values),
then records ``<length u32, seq u32, crc32 u32, values>`` in arrival order (the values of one
:class:`~creative_services.types.UsageRecord` as a ``marshal``-ed tuple: several times cheaper
than JSON; the file is the user's own, mode 0600), wrapping at the end (a length of 0xFFFFFFFF,
or less than a record header left, means "continue at the start"). The header's done word
(written in one aligned 8-byte store) holds where the first unwritten record starts and its
sequence number; a reader starts there and stops at the first record whose sequence or checksum
does not follow, so a record torn by a kill, or an older lap's, is never read back.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import marshal
import mmap
import os
import secrets
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from creative_services.exceptions import UsageSpoolFullError
from creative_services.types import UsageRecord

__all__ = ["Spool", "SpoolFile", "decode", "encode", "fingerprint", "spool_files"]

_MAGIC = b"CSSPOOL1"
_HEADER = 4096
_DONE_AT = 8  # aligned: one 8-byte store
_REC = struct.Struct("<III")
_WRAP = 0xFFFFFFFF
_MASK = 0xFFFFFFFF
_NAMES = tuple(f.name for f in fields(UsageRecord))
_FIELDS = frozenset(_NAMES)
_COST, _CREATED, _METADATA = (_NAMES.index(n) for n in ("cost", "created_at", "metadata"))
_NAMES_AT = 16  # u32 length, then marshal-ed field names
MIRROR = 20_000
"""Records a spool also keeps in memory (the writer then never reads them back from the file)."""
_abandoned: list[Any] = []  # mappings and descriptors inherited over fork: never closed there

Mark = tuple[int, int, int, int]
"""Where a :meth:`SpoolFile.take` ended: (offset, sequence, records, bytes)."""


def encode(record: UsageRecord) -> bytes:
    """One record's values in ``_NAMES`` order (cost as a decimal string, ``created_at`` in
    ISO 8601, metadata as a dict); ValueError when the metadata holds other than JSON values."""
    values = [getattr(record, name) for name in _NAMES]
    values[_COST] = None if record.cost is None else str(record.cost)
    values[_CREATED] = record.created_at.isoformat()
    if not isinstance(record.metadata, dict):
        values[_METADATA] = dict(record.metadata)
    return marshal.dumps(tuple(values), 4)


def decode(body: bytes, names: tuple[str, ...] = _NAMES) -> UsageRecord:
    """The record :func:`encode` wrote with field ``names`` (those this version does not know
    are ignored, those it added take their defaults)."""
    values: dict[str, Any] = {
        k: v
        for k, v in zip(names, marshal.loads(body), strict=False)  # noqa: S302  # our file
        if k in _FIELDS
    }
    if values.get("cost") is not None:
        values["cost"] = Decimal(values["cost"])
    if "created_at" in values:
        values["created_at"] = datetime.fromisoformat(values["created_at"])
    return UsageRecord(**values)


def fingerprint(settings_dict: Mapping[str, Any]) -> str:
    """A short name for one target database (engine, host, port, name), so a spool is only ever
    drained into the database its records were meant for."""
    parts = [str(settings_dict.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME")]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _decoded(body: bytes, names: tuple[str, ...]) -> list[UsageRecord]:
    """``[record]``, or ``[]`` (logged) for a record another version wrote and this cannot read."""
    try:
        return [decode(body, names)]
    except Exception as exc:
        from creative_services._log import get_logger

        get_logger().error("usage_spool_record_unreadable", error=repr(exc), body=body)
        return []


def record_size(body_length: int) -> int:
    return _REC.size + body_length


def placement(tail: int, size: int, used: int, end: int) -> tuple[int, int] | None:
    """Where a record of ``size`` bytes goes in the ring ``[_HEADER, end)`` whose next free byte
    is ``tail`` with ``used`` bytes taken: ``(offset, bytes skipped at the end)``, or None when
    it does not fit."""
    wraps = tail + size > end
    skip = end - tail if wraps else 0
    if used + skip + size > end - _HEADER:
        return None
    return (_HEADER, skip) if wraps else (tail, 0)


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on ``path``, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class SpoolFile:
    """One spool file: records in arrival order, read and released by one writer thread."""

    def __init__(self, path: Path, lock_fd: int | None) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._end = len(self._map)
        self._lock = threading.Lock()
        self._names = _NAMES
        if self._map[: len(_MAGIC)] != _MAGIC:
            self._head, self._seq = _HEADER, 1  # never 0: a zeroed page is no record
        else:
            word = struct.unpack_from("<Q", self._map, _DONE_AT)[0]
            self._head, self._seq = word >> 32, word & _MASK
            size = struct.unpack_from("<I", self._map, _NAMES_AT)[0]
            self._names = marshal.loads(self._map[_NAMES_AT + 4 : _NAMES_AT + 4 + size])  # noqa: S302
        self._read, self._read_seq = self._head, self._seq
        self._count, self._used, self._tail = self._scan()
        self._mirror: deque[tuple[int, UsageRecord]] = deque()

    def _scan(self) -> tuple[int, int, int]:
        """Records, bytes and the next free offset after the done word (a leftover's state)."""
        count = used = 0
        pos, seq = self._head, self._seq
        while (step := self._at(pos, seq)) is not None:
            next_pos = step[2]
            used += next_pos - pos if next_pos > pos else self._end - pos + (next_pos - _HEADER)
            pos, seq = next_pos, (seq + 1) & _MASK
            count += 1
        return count, used, pos

    def _at(self, pos: int, seq: int, *, check: bool = True) -> tuple[int, int, int] | None:
        """``(body offset, body length, next offset)`` of record ``seq`` at ``pos``, if valid
        (``check``: its checksum too)."""
        if self._end - pos < _REC.size:
            pos = _HEADER
        length, found, crc = _REC.unpack_from(self._map, pos)
        if length == _WRAP and found == seq:
            pos = _HEADER
            length, found, crc = _REC.unpack_from(self._map, pos)
        body = pos + _REC.size
        if found != seq or length > self._end - body:
            return None
        if check and zlib.crc32(self._map[body : body + length], seq) != crc:
            return None
        return body, length, body + length

    def __len__(self) -> int:
        return self._count

    def size_bytes(self) -> int:
        """Bytes taken by unwritten records (the file's size is fixed: the bound)."""
        return self._used

    def take(self, limit: int) -> tuple[list[UsageRecord], Mark | None]:
        """The next ``limit`` unread records; they stay until :meth:`release` of the mark."""
        with self._lock:
            wanted = min(limit, self._count - self._pending_read())
        records: list[UsageRecord] = []
        pos, seq, spent, taken = self._read, self._read_seq, 0, 0
        mirror = self._mirror
        while taken < wanted:
            step = self._at(pos, seq, check=not (mirror and mirror[0][0] == seq))
            if step is None:
                break
            body, length, next_pos = step
            if mirror and mirror[0][0] == seq:
                records.append(mirror.popleft()[1])
            else:
                records.extend(_decoded(self._map[body : body + length], self._names))
            spent += next_pos - pos if next_pos > pos else self._end - pos + (next_pos - _HEADER)
            pos, seq, taken = next_pos, (seq + 1) & _MASK, taken + 1
        if not taken:
            return [], None
        self._read, self._read_seq = pos, seq
        return records, (pos, seq, taken, spent)

    def _pending_read(self) -> int:
        """Records taken but not released (between the done word and the read position)."""
        return (self._read_seq - self._seq) & _MASK

    def release(self, mark: Mark) -> None:
        """Forget the records up to ``mark`` (written, or handed over as failed)."""
        pos, seq, count, spent = mark
        with self._lock:
            struct.pack_into("<Q", self._map, _DONE_AT, (pos << 32) | seq)
            self._head, self._seq = pos, seq
            self._count -= count
            self._used -= spent

    def rewind(self) -> None:
        """Read again from the first unwritten record (after a failed take)."""
        with self._lock:
            self._mirror.clear()  # read back from the file from now on
            self._read, self._read_seq = self._head, self._seq

    def close(self, *, delete_if_empty: bool) -> None:
        with self._lock:
            self._map.close()
            if delete_if_empty and not self._count:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path.with_suffix(".lock"))
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock: the file is anyone's leftover now
                self._lock_fd = None

    def abandon(self) -> None:
        """In a forked child: let go without touching the file (the parent still uses it)."""
        _abandoned.append(self._map)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the parent's descriptor keeps the lock held
            self._lock_fd = None


class Spool(SpoolFile):
    """This process's spool file: :meth:`append` is what ``record()`` waits for."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stem = f"{os.getpid()}-{secrets.token_hex(6)}"
        lock_fd = _try_lock(directory / f"{stem}.lock")
        assert lock_fd is not None  # a fresh name: nobody else holds it
        path = directory / f"{stem}.spool"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, _HEADER + max(max_bytes, 64 * 1024))  # no SIGBUS on ENOSPC
            names = marshal.dumps(_NAMES, 4)
            header = _MAGIC + struct.pack("<QI", _HEADER << 32 | 1, len(names)) + names
            assert len(header) <= _HEADER
            os.pwrite(fd, header, 0)
        finally:
            os.close(fd)
        super().__init__(path, lock_fd)
        self.directory = directory

    def append(self, record: UsageRecord) -> bool:
        """Copy ``record`` into the spool; :class:`UsageSpoolFullError` when it has no room,
        False when the spool was closed meanwhile (append to a new one)."""
        body = encode(record)
        size = record_size(len(body))
        with self._lock:
            if self._map.closed:
                return False
            seq = (self._seq + self._count) & _MASK
            place = placement(self._tail, size, self._used, self._end)
            if place is None:
                raise UsageSpoolFullError(str(self.path), self._end - _HEADER, self._count)
            pos, skip = place
            if skip >= _REC.size:
                _REC.pack_into(self._map, self._tail, _WRAP, seq, 0)
            crc = zlib.crc32(body, seq)
            self._map[pos + _REC.size : pos + size] = body
            _REC.pack_into(self._map, pos, len(body), seq, crc)
            self._tail = pos + size
            self._used += skip + size
            self._count += 1
            if len(self._mirror) < MIRROR:
                self._mirror.append((seq, record))
        return True

    def leftovers(self) -> Iterator[SpoolFile]:
        """Each dead process's spool file in this folder, locked for us while we drain it."""
        for lock_path in sorted(self.directory.glob("*.lock")):
            if lock_path.stem == self.path.stem:
                continue
            fd = _try_lock(lock_path)
            if fd is None:
                continue  # its process is alive
            spool = lock_path.with_suffix(".spool")
            if not spool.exists():  # drained by another process, or died before creating it
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
                os.close(fd)
                continue
            yield SpoolFile(spool, fd)


def spool_files(directory: Path) -> list[tuple[Path, int, bool]]:
    """``(path, unwritten records, owner alive)`` of every spool file under ``directory``."""
    found = []
    for path in sorted(directory.glob("*/*.spool")):
        fd = _try_lock(path.with_suffix(".lock"))
        if fd is not None:
            os.close(fd)
        try:
            spool = SpoolFile(path, None)
        except (OSError, ValueError, struct.error):
            continue  # deleted meanwhile, or not a spool
        found.append((path, len(spool), fd is None))
        spool.close(delete_if_empty=False)
    return found
