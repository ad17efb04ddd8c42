"""BFAgent's real tables: ``llms`` (no tier, ``llm_name``, one price) and its usage log."""

from django.db import models


class Llms(models.Model):
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=12)
    llm_name = models.CharField(max_length=100)
    api_key = models.TextField(blank=True)
    api_endpoint = models.TextField(blank=True)
    max_tokens = models.IntegerField(default=4096)
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=1.0)
    frequency_penalty = models.FloatField(default=0.0)
    presence_penalty = models.FloatField(default=0.0)
    total_tokens_used = models.IntegerField(default=0)
    total_requests = models.IntegerField(default=0)
    total_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cost_per_1k_tokens = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "bfagentapp"
        db_table = "llms"


class LLMUsageLog(models.Model):
    llm = models.ForeignKey(Llms, null=True, blank=True, on_delete=models.SET_NULL)
    app_name = models.CharField(max_length=50, blank=True)
    service_name = models.CharField(max_length=100, blank=True)
    tokens_input = models.IntegerField(default=0)
    tokens_output = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    latency_ms = models.IntegerField(default=0)
    success = models.BooleanField(default=True)
    error_message = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "bfagentapp"


class TravelUsageLog(models.Model):
    """The other shape the original tracker wrote: ``input_tokens``/``output_tokens``, a plain
    ``llm_id``, no app or service columns."""

    llm_id = models.IntegerField(null=True)
    input_tokens = models.IntegerField(default=0)
    output_tokens = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "bfagentapp"
