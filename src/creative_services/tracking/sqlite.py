"""The embedded default tracker: one SQLite file (stdlib sqlite3, WAL), safe across threads
and processes. The CLI's ``usage`` command reads it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Unpack

from creative_services.tracking._base import BaseUsageTracker, UsageFields
from creative_services.types import UsageRecord

__all__ = ["USAGE_DB_ENV", "SQLiteUsageTracker", "default_usage_db_path"]

USAGE_DB_ENV = "CREATIVE_SERVICES_USAGE_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    llm_id INTEGER,
    entry_name TEXT,
    provider TEXT,
    model TEXT,
    tier TEXT,
    user_id TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost TEXT,
    cost_source TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    outcome TEXT NOT NULL,
    error_class TEXT,
    attempts INTEGER NOT NULL,
    usage_estimated INTEGER NOT NULL,
    may_have_been_billed INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    cache_hit INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_created_at ON usage (created_at);
"""

_COLUMNS = (
    "created_at, request_id, llm_id, entry_name, provider, model, tier, user_id, prompt_tokens, "
    "completion_tokens, reasoning_tokens, cached_tokens, cost, cost_source, latency_ms, outcome, "
    "error_class, attempts, usage_estimated, may_have_been_billed, metadata, cache_hit"
)
# Columns added after the first release: (name, definition) for ALTER TABLE on older files.
_ADDED_COLUMNS = (("cache_hit", "INTEGER NOT NULL DEFAULT 0"),)
_INSERT = f"INSERT INTO usage ({_COLUMNS}) VALUES ({', '.join('?' * (_COLUMNS.count(',') + 1))})"  # noqa: S608


def default_usage_db_path() -> Path:
    """``$CREATIVE_SERVICES_USAGE_DB``, else ``$XDG_DATA_HOME/creative-services/usage.sqlite3``
    (``~/.local/share/...`` when XDG_DATA_HOME is unset)."""
    explicit = os.environ.get(USAGE_DB_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "creative-services" / "usage.sqlite3"


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a usage file written by an older version up to date, in place (rows keep their
    values; new columns take their defaults). Safe when another process does it at once."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
    for name, definition in _ADDED_COLUMNS:
        if name in present:
            continue
        try:
            conn.execute(f"ALTER TABLE usage ADD COLUMN {name} {definition}")
        except sqlite3.OperationalError as exc:  # another process added it first
            if "duplicate column" not in str(exc):
                raise


class SQLiteUsageTracker(BaseUsageTracker):
    """Writes each record to SQLite; ``arecord`` runs the write in a worker thread."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_usage_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            _add_missing_columns(self._conn)

    def _store(self, record: UsageRecord) -> None:
        row = (
            record.created_at.isoformat(),
            record.request_id,
            record.llm_id,
            record.entry_name,
            record.provider,
            record.model,
            record.tier,
            None if record.user_id is None else str(record.user_id),
            record.prompt_tokens,
            record.completion_tokens,
            record.reasoning_tokens,
            record.cached_tokens,
            None if record.cost is None else str(record.cost),
            record.cost_source,
            record.latency_ms,
            record.outcome,
            record.error_class,
            record.attempts,
            int(record.usage_estimated),
            int(record.may_have_been_billed),
            json.dumps(dict(record.metadata), default=str),
            int(record.cache_hit),
        )
        with self._lock, self._conn:
            self._conn.execute(_INSERT, row)

    async def arecord(self, **fields: Unpack[UsageFields]) -> UsageRecord:
        """Store in a worker thread so the event loop never waits on the disk."""
        import asyncio

        return await asyncio.to_thread(lambda: self.record(**fields))

    def rows(self) -> list[sqlite3.Row]:
        """Every stored row, oldest first (for the CLI and tests)."""
        with self._lock:
            self._conn.row_factory = sqlite3.Row
            try:
                return list(self._conn.execute("SELECT * FROM usage ORDER BY id"))
            finally:
                self._conn.row_factory = None

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteUsageTracker({str(self.path)!r})"
