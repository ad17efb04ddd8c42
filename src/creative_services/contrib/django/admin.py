"""A basic admin: LLM entries with a write-only key, and read-only usage rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from creative_services.contrib.django.models import LLMModel, LLMUsage


class LLMModelForm(forms.ModelForm):
    """The key is never sent to the browser; leaving it empty keeps the stored one."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = LLMModel
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["api_key"] = ""

    def clean_api_key(self) -> Any:
        """Keep the stored key unless a new one was typed or clearing was asked."""
        typed = self.cleaned_data.get("api_key") or ""
        if typed or not self.instance.pk or self.data.get(self.add_prefix("clear_api_key")):
            return typed
        return self.instance.api_key  # may be an UndecryptableKey: saving keeps its ciphertext


@admin.register(LLMModel)
class LLMModelAdmin(admin.ModelAdmin):
    """Entries, filterable by tier, provider and state."""

    form = LLMModelForm
    list_display = ("name", "provider", "model_name", "tier", "priority", "is_active", "has_key")
    list_filter = ("tier", "provider", "is_active")
    search_fields = ("name", "model_name")
    readonly_fields = ("created_at", "updated_at")

    @admin.display(boolean=True, description="key stored")
    def has_key(self, obj: LLMModel) -> bool:
        """Whether a key is stored (never the key)."""
        return bool(obj.api_key)


@admin.register(LLMUsage)
class LLMUsageAdmin(admin.ModelAdmin):
    """Usage rows: read-only."""

    list_display = (
        "created_at", "entry_name", "tier", "user_id", "prompt_tokens", "completion_tokens",
        "cost", "outcome",
    )  # fmt: skip
    list_filter = ("created_at", "tier", "outcome", "provider")
    search_fields = ("user_id", "entry_name", "request_id")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: Any) -> bool:
        """Usage is written by the tracker only."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Usage rows are history: never edited."""
        return False
