"""A usage log table in the original package's shape (BFAgent's ``LLMUsageLog``), written as is.

The table has ``tokens_input``/``tokens_output`` (or ``input_tokens``/``output_tokens``) and
``cost``, and may have ``llm`` (a foreign key) or ``llm_id``, ``app_name``, ``service_name``,
``latency_ms``, ``success``, ``error_message``, ``created_at``. :class:`LegacyLogTracker` is a
:class:`DjangoUsageTracker` (same commit/batch/async paths) whose rows go to that table.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from creative_services.contrib.django._rows import resolve_model
from creative_services.contrib.django.tracking import DjangoUsageTracker
from creative_services.exceptions import ConfigurationError
from creative_services.types import UsageRecord

__all__ = ["LegacyLogTracker", "log_fields", "row_values"]

_TOKENS = (("tokens_input", "tokens_output"), ("input_tokens", "output_tokens"))
_OPTIONAL = ("app_name", "service_name", "latency_ms", "success", "error_message")


def log_fields(model: Any) -> tuple[str, str, set[str]]:
    """The token fields of ``model`` (input, output) and all its fields.

    Raises: ConfigurationError when it has no token or cost fields.
    """
    names = {f.name for f in model._meta.concrete_fields}
    for tokens_in, tokens_out in _TOKENS:
        if tokens_in in names and tokens_out in names and "cost" in names:
            return tokens_in, tokens_out, names
    raise ConfigurationError(
        f"usage log model {model._meta.label} needs cost and tokens_input/tokens_output "
        "(or input_tokens/output_tokens)"
    )


def row_values(model: Any, record: UsageRecord, defaults: dict[str, str]) -> dict[str, Any]:
    """The log row of ``record`` (pure but for the model's field list)."""
    tokens_in, tokens_out, names = log_fields(model)
    meta = record.metadata
    values: dict[str, Any] = {
        tokens_in: record.prompt_tokens,
        tokens_out: record.completion_tokens + record.reasoning_tokens,
        "cost": record.cost if record.cost is not None else Decimal(0),
        "app_name": meta.get("app_name", defaults.get("app_name", "")),
        "service_name": meta.get("service_name", defaults.get("service_name", "")),
        "latency_ms": round(record.latency_ms),
        "success": record.outcome == "success",
        "error_message": meta.get("error_message") or record.error_class,
    }
    values = {k: v for k, v in values.items() if k in names}
    if "llm" in names or "llm_id" in names:
        values["llm_id"] = record.llm_id
    if "created_at" in names:
        values["created_at"] = record.created_at
    return values


class LegacyLogTracker(DjangoUsageTracker):
    """Writes each record as a row of ``model_class`` (the original log table).

    ``llm_model_class`` is the ``Llms`` model: a record whose ``llm_id`` has no row there is
    logged with no LLM. ``app_name``/``service_name`` fill those columns when a record's
    metadata does not. Raises: ConfigurationError when the table lacks tokens or cost.
    """

    def __init__(
        self,
        model_class: Any,
        llm_model_class: Any = None,
        *,
        app_name: str = "",
        service_name: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_class = resolve_model(model_class)
        self.llm_model_class = None if llm_model_class is None else resolve_model(llm_model_class)
        self.defaults = {"app_name": app_name, "service_name": service_name}
        log_fields(self.model_class)

    def __repr__(self) -> str:
        return f"LegacyLogTracker({self.model_class._meta.label})"

    def _alias(self) -> str:
        if self.using is not None:
            return self.using
        from django.db import router

        return str(router.db_for_write(self.model_class))

    def _known_llm(self, llm_id: int | None, alias: str) -> int | None:
        if llm_id is None or self.llm_model_class is None:
            return llm_id
        exists = self.llm_model_class._base_manager.using(alias).filter(pk=llm_id).exists()
        return llm_id if exists else None

    def _write(self, records: Any, *, raise_errors: bool) -> None:
        alias = self._alias()
        try:
            rows = []
            for record in records:
                values = row_values(self.model_class, record, self.defaults)
                if "llm_id" in values:
                    values["llm_id"] = self._known_llm(values["llm_id"], alias)
                rows.append(self.model_class(**values))
            self.model_class._base_manager.using(alias).bulk_create(rows)
        except Exception as exc:
            self.failed.extend(records)
            from creative_services._log import get_logger

            for record in records:  # the record itself holds no key
                get_logger().error(
                    "usage_record_failed", tracker=type(self).__name__, error=repr(exc),
                    record=repr(record),
                )  # fmt: skip
            if raise_errors:
                raise

    def track(
        self,
        llm_id: int | None,
        app_name: str = "",
        service_name: str = "",
        tokens_input: int = 0,
        tokens_output: int = 0,
        cost: Decimal | float | None = None,
        latency_ms: float = 0,
        success: bool = True,
        error_message: str | None = None,
        llm_name: str = "",
    ) -> UsageRecord:
        """Log one call the original way; returns the record written."""
        meta = {"app_name": app_name, "service_name": service_name}
        if error_message:
            meta["error_message"] = error_message
        return self.record(
            llm_id=llm_id,
            entry_name=llm_name or None,
            prompt_tokens=tokens_input,
            completion_tokens=tokens_output,
            cost=cost,
            latency_ms=float(latency_ms),
            outcome="success" if success else "error",
            metadata=meta,
        )

    def _rows(self, app_name: str | None, service_name: str | None) -> Any:
        names = log_fields(self.model_class)[2]
        rows = self.model_class._base_manager.using(self._alias()).all()
        if app_name and "app_name" in names:
            rows = rows.filter(app_name=app_name)
        if service_name and "service_name" in names:
            rows = rows.filter(service_name=service_name)
        return rows

    def get_stats(
        self,
        app_name: str | None = None,
        service_name: str | None = None,
        llm_id: int | None = None,
        since: datetime | None = None,
    ) -> Any:
        """Sums over the log table (``UsageStats`` of the original package)."""
        from creative_services._compat.usage_tracker import stats_of

        rows = self._rows(app_name, service_name)
        if llm_id is not None:
            rows = rows.filter(llm_id=llm_id)
        if since is not None and "created_at" in log_fields(self.model_class)[2]:
            rows = rows.filter(created_at__gte=since)
        return stats_of([self._record_of(r) for r in rows])

    def get_recent(self, limit: int = 100, app_name: str | None = None) -> list[UsageRecord]:
        """The newest ``limit`` rows as records, newest first."""
        rows = self._rows(app_name, None)
        names = log_fields(self.model_class)[2]
        rows = rows.order_by("-created_at" if "created_at" in names else "-pk")
        return [self._record_of(r) for r in rows[:limit]]

    def _record_of(self, row: Any) -> UsageRecord:
        tokens_in, tokens_out, names = log_fields(self.model_class)
        meta = {k: getattr(row, k, None) for k in ("app_name", "service_name", "error_message")}
        extra = {"created_at": row.created_at} if "created_at" in names else {}
        return UsageRecord(
            llm_id=getattr(row, "llm_id", None),
            prompt_tokens=getattr(row, tokens_in) or 0,
            completion_tokens=getattr(row, tokens_out) or 0,
            cost=row.cost,
            latency_ms=float(getattr(row, "latency_ms", 0) or 0),
            outcome="success" if getattr(row, "success", True) else "error",
            metadata={k: v for k, v in meta.items() if v},
            **extra,
        )
