"""The gateway's virtual keys as a table of the project (hashes only; see
:mod:`creative_services.gateway.keys`). Loaded by ``models.py``."""

from __future__ import annotations

from django.db import models

__all__ = ["GatewayKey"]


class GatewayKey(models.Model):
    """One virtual key: its SHA-256, the user it books on, the models it may use, its expiry."""

    key_id = models.CharField(max_length=12, primary_key=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    name = models.CharField(max_length=100, blank=True, default="")
    user_id = models.CharField(max_length=255, db_index=True)
    model_names = models.JSONField(default=list, blank=True)
    """Tiers or entry names the key may use; empty: all."""
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "gateway key"
        verbose_name_plural = "gateway keys"

    def __str__(self) -> str:
        return f"{self.key_id} ({self.user_id})"
