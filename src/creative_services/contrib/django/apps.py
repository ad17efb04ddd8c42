"""The app's configuration: registers the system checks and the registry's save signals."""

from __future__ import annotations

from django.apps import AppConfig


class CreativeServicesConfig(AppConfig):
    """Add ``"creative_services.contrib.django"`` to ``INSTALLED_APPS``; the label is
    ``creative_services``."""

    name = "creative_services.contrib.django"
    label = "creative_services"
    verbose_name = "Creative services (LLMs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the checks; invalidate registry snapshots when an LLM row is saved here."""
        from django.core import checks
        from django.db.models.signals import post_delete, post_save

        from creative_services.contrib.django import _watch
        from creative_services.contrib.django import checks as cs_checks

        for check in cs_checks.CHECKS:
            checks.register(check, *cs_checks.tags_of(check))
        post_save.connect(_watch.invalidate_model, dispatch_uid="creative_services_registry_save")
        post_delete.connect(
            _watch.invalidate_model, dispatch_uid="creative_services_registry_delete"
        )
