"""Virtual keys for the gateway: what a client sends instead of a provider key.

A virtual key (``csk-`` and 43 random characters) is shown once, when it is created; the store
keeps only its SHA-256 (a random 256-bit secret needs no slow hash), the user it books usage and
budgets on, the models it may use (tiers or entry names; empty: all), an expiry and a revocation
time. Every worker reads the same SQLite file (WAL), and a worker trusts what it read for at most
:data:`RECHECK_SECONDS`, so a revoked key is refused everywhere within a second.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from creative_services.exceptions import AuthenticationError, InvalidRequestError

__all__ = ["PREFIX", "RECHECK_SECONDS", "BaseKeyStore", "VirtualKey", "VirtualKeyStore", "hash_key"]

PREFIX = "csk-"
RECHECK_SECONDS = 0.5
"""How long a worker reuses a key it looked up before reading the store again."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS virtual_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
)
"""


def hash_key(key: str) -> str:
    """The stored form of a key. Pure."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """One key as stored (never the key itself)."""

    key_id: str
    name: str
    user_id: str
    models: tuple[str, ...]
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def state(self, now: float) -> str:
        """``active``, ``expired`` or ``revoked``. Pure."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def allows(self, *names: str | None) -> bool:
        """Whether any of ``names`` (the requested model, its entry, its tier) is allowed."""
        return not self.models or any(n in self.models for n in names if n)


def _row(row: sqlite3.Row | tuple[object, ...]) -> VirtualKey:
    key_id, name, user_id, models, created, expires, revoked = row
    return VirtualKey(
        str(key_id), str(name), str(user_id), tuple(json.loads(str(models))),
        float(created), None if expires is None else float(expires),  # type: ignore[arg-type]
        None if revoked is None else float(revoked),  # type: ignore[arg-type]
    )  # fmt: skip


_SELECT = (
    "SELECT key_id, name, user_id, models, created_at, expires_at, revoked_at FROM virtual_keys"
)
_INSERT = (
    "INSERT INTO virtual_keys (key_id, name, user_id, models, created_at, expires_at, "
    "revoked_at, key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class BaseKeyStore(ABC):
    """What every key store shares: creating, checking and revoking keys. A store supplies the
    four storage steps (``_insert``, ``_fetch``, ``_all``, ``_revoke``); all are blocking."""

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._seen: dict[str, tuple[float, VirtualKey | None]] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _insert(self, record: VirtualKey, digest: str) -> None: ...

    @abstractmethod
    def _fetch(self, digest: str) -> VirtualKey | None: ...

    @abstractmethod
    def _all(self) -> list[VirtualKey]: ...

    @abstractmethod
    def _revoke(self, key_id: str, at: float) -> bool: ...

    def create(
        self,
        user_id: str,
        *,
        name: str = "",
        models: Iterable[str] = (),
        expires_in: float | None = None,
    ) -> tuple[str, VirtualKey]:
        """A new key (returned once, never stored) and its record. Raises: InvalidRequestError."""
        if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > 255:
            raise InvalidRequestError(
                "a virtual key needs a user id of 1 to 255 characters: give --user", param="user"
            )
        if expires_in is not None and not expires_in > 0:
            raise InvalidRequestError("expires_in must be > 0 seconds", param="expires_in")
        key = PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(key)
        now = float(self._clock())
        record = VirtualKey(
            digest[:12], name, user_id, tuple(m for m in models if m), now,
            None if expires_in is None else now + expires_in, None,
        )  # fmt: skip
        self._insert(record, digest)
        return key, record

    def list(self) -> list[VirtualKey]:
        """Every key, newest first (never the keys themselves)."""
        return self._all()

    def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id`` (the id ``list`` shows); False when there is no such active key."""
        return self._revoke(key_id, float(self._clock()))

    def _lookup(self, digest: str) -> VirtualKey | None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(digest)
        if seen is not None and now - seen[0] < RECHECK_SECONDS:
            return seen[1]
        found = self._fetch(digest)
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[digest] = (now, found)
        return found

    def authenticate(self, authorization: str | None) -> VirtualKey:
        """The active key an ``Authorization: Bearer`` header names. Raises: AuthenticationError."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationError(
                "send a virtual key as 'Authorization: Bearer csk-...' "
                "(create one with: creative-services keys create --user USER)"
            )
        if not key.startswith(PREFIX):
            raise AuthenticationError(
                f"this is not a virtual key (they start with {PREFIX!r}): send the key that "
                "'creative-services keys create' printed, never a provider key"
            )
        found = self._lookup(hash_key(key))
        if found is None:
            raise AuthenticationError("unknown virtual key: check it, or create one")
        state = found.state(float(self._clock()))
        if state != "active":
            raise AuthenticationError(f"virtual key {found.key_id} is {state}: create a new one")
        return found


class VirtualKeyStore(BaseKeyStore):
    """Virtual keys in one SQLite file shared by every gateway worker on the host."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] | None = None) -> None:
        super().__init__(clock=clock)
        self.path = Path(path).expanduser()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.path, timeout=5.0, isolation_level=None)

    def _insert(self, record: VirtualKey, digest: str) -> None:
        with self._connect() as db:
            db.execute(
                _INSERT,
                (record.key_id, record.name, record.user_id, json.dumps(list(record.models)),
                 record.created_at, record.expires_at, None, digest),
            )  # fmt: skip

    def _all(self) -> list[VirtualKey]:
        with self._connect() as db:
            rows = db.execute(_SELECT + " ORDER BY created_at DESC")
            return [_row(r) for r in rows.fetchall()]

    def _revoke(self, key_id: str, at: float) -> bool:
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE virtual_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (at, key_id),
            )
            return cursor.rowcount == 1

    def _fetch(self, digest: str) -> VirtualKey | None:
        with self._connect() as db:
            row = db.execute(_SELECT + " WHERE key_hash = ?", (digest,)).fetchone()
        return None if row is None else _row(row)
