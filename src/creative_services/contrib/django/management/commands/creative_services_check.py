"""``manage.py creative_services_check``: the app's system checks, database ones included."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    """Run every ``creative_services.*`` check against every database; exit 1 on errors."""

    help = (
        "Check the creative-services configuration and the LLM table (for CI): exits non-zero "
        "when a check reports an error (or a warning, with --fail-level WARNING)."
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``--fail-level`` and ``--database`` as in ``manage.py check``."""
        parser.add_argument(
            "--fail-level",
            default="ERROR",
            choices=["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"],
            help="Message level that makes the command fail (default: ERROR).",
        )
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            help="Database alias to check (repeatable; default: all of them).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Delegate to ``check`` restricted to the app's tag; it raises on failure."""
        call_command(
            "check",
            tags=["creative_services"],
            databases=options["databases"] or list(connections),
            fail_level=options["fail_level"],
            stdout=self.stdout,
            stderr=self.stderr,
        )
