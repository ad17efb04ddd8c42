"""Admin of budgets: limits are edited here; counters and open reservations are read-only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin

from creative_services.contrib.django.budget_models import BudgetCounter, BudgetLease, BudgetRule

__all__ = ["BudgetCounterAdmin", "BudgetLeaseAdmin", "BudgetRuleAdmin"]


@admin.register(BudgetRule)
class BudgetRuleAdmin(admin.ModelAdmin):
    """Spending limits: list, filter, edit amounts and switch them on and off in the list."""

    list_display = ("__str__", "scope", "member", "period", "amount", "is_active", "updated_at")
    list_display_links = ("__str__",)
    list_editable = ("amount", "is_active")
    list_filter = ("scope", "period", "is_active")
    search_fields = ("scope_id", "note")
    readonly_fields = ("created_at", "updated_at")
    fields = ("scope", "scope_id", "period", "amount", "is_active", "note", *readonly_fields)

    @admin.display(description="member", ordering="scope_id")
    def member(self, obj: BudgetRule) -> str:
        """The user or tenant id, or who the row covers when it has none."""
        if obj.scope == "global":
            return "everyone"
        return obj.scope_id or f"every {obj.scope}"


@admin.register(BudgetCounter)
class BudgetCounterAdmin(admin.ModelAdmin):
    """Running counters: read-only (they are moved by reservations only)."""

    list_display = (
        "bucket", "scope", "member", "period", "spent", "reserved", "limit", "remaining",
        "updated_at",
    )  # fmt: skip
    list_filter = ("scope", "period", "bucket")
    search_fields = ("member", "bucket")

    @admin.display(description="remaining")
    def remaining(self, obj: BudgetCounter) -> Decimal | None:
        """What is left under the limit of the last reservation (never below 0)."""
        if obj.limit is None:
            return None
        left: Decimal = obj.limit - obj.spent - obj.reserved
        return max(left, Decimal(0))

    def has_add_permission(self, request: Any) -> bool:
        """Counters are created by reservations only."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Counters are books: never edited by hand."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Deleting a counter would forget spending: not from the admin."""
        return False


@admin.register(BudgetLease)
class BudgetLeaseAdmin(admin.ModelAdmin):
    """Open reservations (leases): what running calls hold, and which ones expired unsettled."""

    list_display = ("request_id", "amount", "state", "expires_at", "created_at", "counters")
    list_filter = ("reclaimed",)
    search_fields = ("request_id", "counters")
    ordering = ("expires_at",)

    @admin.display(description="state")
    def state(self, obj: BudgetLease) -> str:
        """open (a call runs), expired (its holder died; reclaimed at the next reservation that
        needs the room) or reclaimed (given back; a late settle still counts its cost)."""
        from django.utils import timezone

        if obj.reclaimed:
            return "reclaimed"
        return "expired" if obj.expires_at < timezone.now() else "open"

    def has_add_permission(self, request: Any) -> bool:
        """Leases are made by reservations only."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Leases are books: never edited by hand."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """Deleting an open lease would strand its hold on the counters."""
        return False
