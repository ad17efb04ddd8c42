"""The seed's ``Llms`` model, exactly: no priority, no key variable, no timestamps, no triggers."""

from django.db import models


class Llms(models.Model):
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=50)
    model_name = models.CharField(max_length=100)
    tier = models.CharField(max_length=20)
    api_key = models.CharField(max_length=200, blank=True)
    api_endpoint = models.URLField(blank=True, null=True)
    max_tokens = models.IntegerField(default=4096)
    temperature = models.FloatField(default=0.7)
    cost_per_1k_input = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    cost_per_1k_output = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        app_label = "legacyapp"
