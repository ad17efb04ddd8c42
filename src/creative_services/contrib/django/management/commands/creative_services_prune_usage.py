"""``manage.py creative_services_prune_usage``: delete usage rows older than some days.

Rows go in batches (``--batch-size``, each its own short transaction), so a large table is
pruned without one long lock. Budgets keep their own running counters: pruning history does
not change what a user has spent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """Delete ``LLMUsage`` rows created more than ``--older-than`` days ago."""

    help = (
        "Delete LLM usage rows older than --older-than DAYS, in batches; --dry-run only counts "
        "them."
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``--older-than``, ``--dry-run``, ``--batch-size``, ``--database``."""
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="Delete rows created more than DAYS days ago (a whole number >= 1).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, do not delete.")
        parser.add_argument("--batch-size", type=int, default=5_000, help="Rows per DELETE.")
        parser.add_argument("--database", help="Database alias (default: the router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Delete (or count) the old rows and print how many.

        Raises: CommandError when ``--older-than`` or ``--batch-size`` is below 1.
        """
        from django.db import router
        from django.utils import timezone

        from creative_services.contrib.django.models import LLMUsage

        days, batch = options["older_than"], options["batch_size"]
        if days < 1:
            raise CommandError(f"--older-than must be at least 1 day, got {days}")
        if batch < 1:
            raise CommandError(f"--batch-size must be at least 1, got {batch}")
        alias = options["database"] or router.db_for_write(LLMUsage)
        cutoff = timezone.now() - dt.timedelta(days=days)
        old = LLMUsage.objects.using(alias).filter(created_at__lt=cutoff).order_by()
        when = f"created before {cutoff.isoformat(timespec='seconds')} (older than {days} days)"
        if options["dry_run"]:
            self.stdout.write(f"Dry run: would delete {old.count()} usage rows {when}.")
            return
        deleted = 0
        while True:
            ids = list(old.values_list("pk", flat=True)[:batch])
            if not ids:
                break
            _, per_model = LLMUsage.objects.using(alias).filter(pk__in=ids).delete()
            deleted += per_model.get(LLMUsage._meta.label, 0)
            if options["verbosity"] >= 2:
                self.stdout.write(f"  deleted {deleted} so far")
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} usage rows {when}."))
