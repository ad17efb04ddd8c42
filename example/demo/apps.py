"""App configuration of the demo app."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo page (``/``)."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
