"""The admin: LLM entries (write-only key, a "test this model" action) and read-only usage.

- **LLMs**: filters by tier, provider and state. The key field never shows the stored key;
  leaving it empty keeps it, "clear api key" removes it. The action "Test the selected models"
  makes one tiny call through :class:`~creative_services.DynamicLLMClient` with each selected
  entry (as saved, active or not; no fallback, no retry) and reports the answer, tokens, cost and
  latency, or the typed error, as a message. The call is recorded in the usage table like any
  other (``metadata={"source": "admin test"}``).
- **LLM usage**: read-only; filters by date, user, tier, model, outcome and provider; below the
  list, the calls, failures, tokens and exact cost of all the rows the filters select.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django import forms
from django.contrib import admin, messages

from creative_services.contrib.django.models import LLMModel, LLMUsage

TEST_PROMPT = "Reply with the single word OK."
"""What "test this model" asks."""
TEST_MAX_SELECTED = 10
"""At most this many entries are tested per action (each call may take seconds)."""
TEST_TIMEOUT = 30.0
"""Seconds one test call may take in all."""


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
    """Entries, filterable by tier, provider and state, with a "test this model" action."""

    form = LLMModelForm
    list_display = ("name", "provider", "model_name", "tier", "priority", "is_active", "has_key")
    list_filter = ("tier", "provider", "is_active")
    search_fields = ("name", "model_name")
    readonly_fields = ("created_at", "updated_at")
    actions = ("test_models",)

    @admin.display(boolean=True, description="key stored")
    def has_key(self, obj: LLMModel) -> bool:
        """Whether a key is stored (never the key)."""
        return bool(obj.api_key)

    @admin.action(description="Test the selected models (one tiny call each)")
    def test_models(self, request: Any, queryset: Any) -> None:
        """Call each selected entry once and report the outcome as a message."""
        selected = list(queryset.order_by("priority", "pk")[: TEST_MAX_SELECTED + 1])
        if len(selected) > TEST_MAX_SELECTED:
            self.message_user(
                request,
                f"Select at most {TEST_MAX_SELECTED} entries to test at once.",
                messages.WARNING,
            )
            return
        for obj in selected:
            level, text = probe_entry(obj, user_id=getattr(request.user, "pk", None))
            self.message_user(request, text, level)


def probe_entry(obj: Any, *, user_id: Any = None) -> tuple[int, str]:
    """One tiny call with the saved row ``obj``: the message level and text that report it.

    Errors of this library (configuration or provider) are reported, never raised; their
    messages never hold a key.
    """
    from creative_services import DictRegistry, DynamicLLMClient
    from creative_services.contrib.django._rows import (
        columns,
        entry_from_row,
        zero_price_is_unknown,
    )
    from creative_services.contrib.django._usage import decimal_text
    from creative_services.contrib.django.tracking import DjangoUsageTracker
    from creative_services.exceptions import CreativeServicesError
    from creative_services.retry import RetryPolicy

    name = getattr(obj, "name", str(obj))
    try:
        fresh = type(obj)._base_manager.get(pk=obj.pk)  # as saved, not as the list showed it
        row = {c: fresh.pk if c == "pk" else getattr(fresh, c) for c in columns(type(obj))}
        zero = zero_price_is_unknown(type(obj))
        entry = entry_from_row(row, zero_is_unknown=zero)
        entry = replace(entry, is_active=True)  # inactive ones can be tried too
        client = DynamicLLMClient(
            DictRegistry([entry]),
            tracker=DjangoUsageTracker(),
            retry_policy=RetryPolicy(max_retries=0, timeout=TEST_TIMEOUT),
        )
        response = client.generate_sync(
            TEST_PROMPT,
            llm_name=entry.name,
            max_tokens=16,
            user_id=user_id,
            metadata={"source": "admin test"},
        )
    except CreativeServicesError as exc:
        return messages.ERROR, f"{name}: failed with {type(exc).__name__}: {exc}"
    except type(obj).DoesNotExist:
        return messages.ERROR, f"{name}: the entry no longer exists"
    usage = response.usage
    content = (response.content or "").strip()
    if len(content) > 80:
        content = content[:79] + "…"
    cost = (
        "unknown"
        if response.cost is None
        else f"${decimal_text(response.cost)} ({response.cost_source})"
    )
    return messages.SUCCESS, (
        f"{name}: OK in {response.latency_ms:.0f} ms from {response.model or entry.model_name}: "
        f"{content!r}; tokens {usage.prompt_tokens} in + {usage.completion_tokens} out; "
        f"cost {cost}"
    )


class UserFilter(admin.SimpleListFilter):
    """Usage of one user: the 50 users with the most recent calls are offered; any id works."""

    title = "user"
    parameter_name = "user"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        """The most recently active user ids."""
        seen: list[tuple[str, str]] = []
        ids = (
            LLMUsage.objects.exclude(user_id=None)
            .order_by("-created_at")
            .values_list("user_id", flat=True)[:2000]
        )
        for user_id in ids:
            if len(seen) >= 50:
                break
            if all(user_id != v for v, _ in seen):
                seen.append((user_id, user_id))
        return seen

    def queryset(self, request: Any, queryset: Any) -> Any:
        """Rows of the chosen user."""
        value = self.value()
        return queryset if value is None else queryset.filter(user_id=value)


@admin.register(LLMUsage)
class LLMUsageAdmin(admin.ModelAdmin):
    """Usage rows: read-only, filterable, with token and cost totals of the filtered rows."""

    list_display = (
        "created_at", "entry_name", "model", "tier", "user_id", "prompt_tokens",
        "completion_tokens", "cost", "outcome", "latency_ms",
    )  # fmt: skip
    list_filter = ("created_at", UserFilter, "tier", "model", "outcome", "provider")
    search_fields = ("user_id", "entry_name", "model", "request_id")
    date_hierarchy = "created_at"
    change_list_template = "admin/creative_services/llmusage/change_list.html"

    def has_add_permission(self, request: Any) -> bool:
        """Usage is written by the tracker only."""
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        """Usage rows are history: never edited."""
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        """History is pruned with ``creative_services_prune_usage``, not row by row."""
        return False

    def changelist_view(self, request: Any, extra_context: dict[str, Any] | None = None) -> Any:
        """The list, plus ``usage_totals`` over every row the filters select (one query)."""
        from creative_services.contrib.django._usage import decimal_text, totals

        response = super().changelist_view(request, extra_context)
        context: dict[str, Any] | None = getattr(response, "context_data", None)
        changelist = context.get("cl") if context is not None else None
        if context is not None and changelist is not None:
            summary = totals(changelist.queryset)
            context["usage_totals"] = summary
            context["usage_cost"] = decimal_text(summary.cost)
        return response


from creative_services.contrib.django import budgets_admin, gateway_admin  # noqa: E402,F401
