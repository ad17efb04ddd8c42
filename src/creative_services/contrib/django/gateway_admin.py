"""Admin for the gateway's virtual keys: create one (shown once), see states, revoke."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages

from creative_services.contrib.django.gateway_models import GatewayKey

__all__ = ["GatewayKeyAdmin"]


class GatewayKeyForm(forms.ModelForm):
    """The add form: who the key is for, what it may use, how long it lives."""

    allowed = forms.CharField(
        required=False, label="Models",
        help_text="Tiers or entry names it may use, comma-separated; empty: all.",
    )  # fmt: skip
    days = forms.FloatField(required=False, min_value=0.001, label="Expires in (days)")

    class Meta:
        model = GatewayKey
        fields = ("user_id", "name")


@admin.register(GatewayKey)
class GatewayKeyAdmin(admin.ModelAdmin):
    """Keys are created here (the key is shown once) and revoked, never edited."""

    form = GatewayKeyForm
    list_display = ("key_id", "user_id", "name", "allowed_models", "state", "created_at",
                    "expires_at", "revoked_at")  # fmt: skip
    search_fields = ("key_id", "user_id", "name")
    actions = ("revoke_keys",)

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """A key is revoked and replaced, not edited."""
        return False

    @admin.display(description="models")
    def allowed_models(self, obj: GatewayKey) -> str:
        return ", ".join(obj.model_names or ()) or "all"

    @admin.display(description="state")
    def state(self, obj: GatewayKey) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        if obj.expires_at is not None and obj.expires_at <= dt.datetime.now(dt.UTC):
            return "expired"
        return "active"

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        """Create the key through the store and show it once."""
        from creative_services.contrib.django.gateway_keys import DjangoKeyStore

        data = form.cleaned_data
        models = [m.strip() for m in (data.get("allowed") or "").split(",") if m.strip()]
        days = data.get("days")
        key, record = DjangoKeyStore().create(
            data["user_id"], name=data.get("name") or "", models=models,
            expires_in=None if days is None else days * 86400,
        )  # fmt: skip
        obj.pk = record.key_id
        messages.warning(request, f"New key {record.key_id} (shown once, copy it now): {key}")

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: Any, queryset: Any) -> None:
        count = queryset.filter(revoked_at=None).update(revoked_at=dt.datetime.now(dt.UTC))
        messages.success(request, f"Revoked {count} key(s); every gateway refuses them within 1 s")
