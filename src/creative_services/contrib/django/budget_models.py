"""The budget tables: spending limits edited in the admin, and one running counter per bucket.

Loaded by ``models.py`` (the app's models module), so the models belong to the
``creative_services`` app. :class:`~creative_services.contrib.django.budgets.DjangoBudget` reads
the limits and moves the counters; see there for the atomic protocol.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models, transaction

__all__ = ["BudgetCounter", "BudgetLease", "BudgetRule"]

_SCOPES = [("user", "User"), ("tenant", "Tenant"), ("global", "Global")]
_PERIODS = [("day", "Day (UTC)"), ("month", "Month (UTC)")]
_MONEY = {"max_digits": 20, "decimal_places": 10}

generation = 0
"""Bumped when this process commits a saved or deleted :class:`BudgetRule` (``save()``,
``delete()``, ``QuerySet.delete()``): budgets here read the limits again at once. Changes that
send no signal (``QuerySet.update()``, raw SQL, other processes) apply within the budgets' TTL."""


def _limits_changed() -> None:
    global generation
    generation += 1


def _on_rule_change(sender: Any, using: str | None = None, **_: Any) -> None:
    """``post_save``/``post_delete`` receiver of :class:`BudgetRule`: bump on commit."""
    transaction.on_commit(_limits_changed, using=using)


class BudgetRule(models.Model):
    """A spending limit: at most ``amount`` USD per ``period`` for one scope.

    ``scope_id`` empty means every member of the scope (every user, every tenant); a row with a
    ``scope_id`` replaces the every-member row of the same scope and period for that member (give
    one user a bigger or smaller budget). Global rows have no ``scope_id``. When several active
    rows apply to the same member and period, the smallest amount wins.
    """

    scope = models.CharField(max_length=10, choices=_SCOPES)
    scope_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        help_text="User or tenant id; empty means every member of the scope.",
    )
    period = models.CharField(max_length=10, choices=_PERIODS)
    amount = models.DecimalField(**_MONEY, validators=[MinValueValidator(0)], help_text="USD")
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("scope", "scope_id", "period")
        verbose_name = "budget limit"
        verbose_name_plural = "budget limits"

    def __str__(self) -> str:
        who = "global" if self.scope == "global" else f"{self.scope} {self.scope_id or '(every)'}"
        return f"{who}: ${self.amount} per {self.period}"

    def clean(self) -> None:
        """Global limits have no member; an empty ``scope_id`` is stored as NULL.

        Raises: ValidationError.
        """
        if not self.scope_id:
            self.scope_id = None
        if self.scope == "global" and self.scope_id is not None:
            raise ValidationError({"scope_id": "A global limit applies to everyone: leave empty."})

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save (an empty ``scope_id`` is stored as NULL)."""
        if not self.scope_id:
            self.scope_id = None
        super().save(*args, **kwargs)


class BudgetCounter(models.Model):
    """What one member spent and holds in one period's bucket, e.g. user 7 on 2026-11-25.

    ``spent`` is the settled cost of finished calls; ``reserved`` what running calls hold (their
    worst case, until they settle). ``limit`` is the limit that applied at the last reservation
    (for display; the limit rows are authoritative). ``member`` is ``*`` for the global scope.
    """

    scope = models.CharField(max_length=10, choices=_SCOPES)
    member = models.CharField(max_length=255)
    period = models.CharField(max_length=10, choices=_PERIODS)
    bucket = models.CharField(max_length=10, help_text="2026-11-25 for a day, 2026-11 for a month")
    spent = models.DecimalField(**_MONEY, default=0)
    reserved = models.DecimalField(**_MONEY, default=0)
    limit = models.DecimalField(**_MONEY, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-bucket", "scope", "member", "period")
        verbose_name = "budget counter"
        verbose_name_plural = "budget counters"
        constraints = (
            models.UniqueConstraint(
                fields=["scope", "member", "period", "bucket"], name="cs_budget_counter_key"
            ),
        )

    def __str__(self) -> str:
        who = "global" if self.scope == "global" else f"{self.scope} {self.member}"
        return f"{who} {self.bucket}: spent ${self.spent}, reserved ${self.reserved}"

    @property
    def key(self) -> str:
        """The counter's key as reservations name it: ``user:7:day:2026-11-25``."""
        return f"{self.scope}:{self.member}:{self.period}:{self.bucket}"


class BudgetLease(models.Model):
    """One open reservation: what a running call holds on which counters, and until when.

    Written with the reservation, deleted by its settle or release. A lease whose holder died
    (SIGKILL, a lost settle) expires at ``expires_at`` (the call's deadline plus a margin); any
    process's next reservation that needs the room gives it back to the counters (``reclaimed``:
    the row stays a while so that a late settle still counts its cost, once).
    """

    id = models.CharField(primary_key=True, max_length=32)
    request_id = models.CharField(max_length=255)
    counters = models.TextField(help_text="The counter keys it holds, as a JSON list.")
    amount = models.DecimalField(**_MONEY)
    expires_at = models.DateTimeField(db_index=True)
    reclaimed = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("expires_at",)
        verbose_name = "budget reservation"
        verbose_name_plural = "budget reservations"

    def __str__(self) -> str:
        return f"{self.request_id}: ${self.amount} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


models.signals.post_save.connect(
    _on_rule_change, sender=BudgetRule, dispatch_uid="creative_services_budget_rule_save"
)
models.signals.post_delete.connect(
    _on_rule_change, sender=BudgetRule, dispatch_uid="creative_services_budget_rule_delete"
)
