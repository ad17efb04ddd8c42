"""The app's tables: LLM entries, one usage row per call, and the registry's version stamp."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from creative_services.contrib.django.crypto import EncryptedTextField
from creative_services.types import LLMTier

__all__ = ["LLMModel", "LLMUsage", "RegistryVersion"]

_TIERS = [(t.value, t.value.capitalize()) for t in LLMTier]
_PRICE = {"max_digits": 16, "decimal_places": 10, "null": True, "blank": True}


class LLMModel(models.Model):
    """One model the registry can hand out: the seed's ``Llms`` fields plus what apps need.

    ``api_key`` is encrypted at rest (see :mod:`~creative_services.contrib.django.crypto`); leave
    it empty and set ``api_key_env`` to read the key from that environment variable instead, or
    leave both empty for the provider's usual variable (``OPENAI_API_KEY``, ...). Lower
    ``priority`` is tried first inside a tier, then the cheaper entry.
    """

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=50, help_text="openai, anthropic, groq, ollama, ...")
    model_name = models.CharField(max_length=200)
    tier = models.CharField(max_length=20, choices=_TIERS, default=LLMTier.STANDARD.value)
    api_key = EncryptedTextField(blank=True, default="")
    api_endpoint = models.CharField(max_length=500, blank=True, default="")
    max_tokens = models.PositiveIntegerField(default=4096, validators=[MinValueValidator(1)])
    temperature = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)]
    )
    cost_per_1k_input = models.DecimalField(**_PRICE)
    cost_per_1k_output = models.DecimalField(**_PRICE)
    is_active = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text="Lower is tried first inside a tier.")
    api_key_env = models.CharField(
        max_length=100, blank=True, default="", help_text="Read the key from this variable."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("priority", "id")
        verbose_name = "LLM"
        verbose_name_plural = "LLMs"
        indexes = (models.Index(fields=["tier", "is_active"], name="cs_llm_tier_active"),)

    def __str__(self) -> str:
        return f"{self.name} ({self.provider}/{self.model_name}, {self.tier})"


class LLMUsage(models.Model):
    """One call's books. Name, provider and model are copied so history survives deletes.

    ``llm`` links to :class:`LLMModel` when that is the configured model; ``llm_ref`` always holds
    the entry id the call used (also for a custom ``CREATIVE_SERVICES_LLM_MODEL``).
    """

    llm = models.ForeignKey(
        LLMModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="usage",
    )
    llm_ref = models.BigIntegerField(null=True, blank=True)
    entry_name = models.CharField(max_length=100, blank=True, default="")
    provider = models.CharField(max_length=50, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    tier = models.CharField(max_length=20, blank=True, default="")
    user_id = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    cost_source = models.CharField(max_length=20, default="unknown")
    latency_ms = models.FloatField(default=0.0)
    outcome = models.CharField(max_length=20, default="success")
    error_class = models.CharField(max_length=100, blank=True, default="")
    attempts = models.PositiveIntegerField(default=1)
    usage_estimated = models.BooleanField(default=False)
    may_have_been_billed = models.BooleanField(default=False)
    cache_hit = models.BooleanField(default=False)
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "LLM usage"
        verbose_name_plural = "LLM usage"

    def __str__(self) -> str:
        return (
            f"{self.entry_name or self.llm_ref} {self.outcome} at {self.created_at:%Y-%m-%d %H:%M}"
        )

    @property
    def total_tokens(self) -> int:
        """Prompt, completion and reasoning tokens together."""
        total: int = self.prompt_tokens + self.completion_tokens + self.reasoning_tokens
        return total


class RegistryVersion(models.Model):
    """The registry's version stamp: one row whose ``version`` changes with every change.

    Database triggers on the LLM table bump it (see
    :mod:`~creative_services.contrib.django.triggers`); processes poll it to know when to reload.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "registry version"

    def __str__(self) -> str:
        return f"registry version {self.version}"


from creative_services.contrib.django.budget_models import *  # noqa: E402,F403
from creative_services.contrib.django.gateway_models import *  # noqa: E402,F403
