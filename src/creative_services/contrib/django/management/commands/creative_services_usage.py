"""``manage.py creative_services_usage``: calls, failures, tokens and cost from the usage table.

Costs are exact decimals (summed in the database; see
:mod:`~creative_services.contrib.django._usage`), printed as plain decimal strings. Calls whose
cost is unknown count as 0 and are reported as ``unpriced``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError

from creative_services.contrib.django._usage import GROUPS, UsageSummary, decimal_text


class Command(BaseCommand):
    """Summarise ``LLMUsage`` by user, model, tier or day, as a table or JSON."""

    help = (
        "Summarise LLM usage (calls, failures, tokens, cost in USD) by user, model, tier or day, "
        "optionally since a date; --json for machines."
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``--by``, ``--since``, ``--until``, ``--json``, ``--database``."""
        parser.add_argument("--by", choices=GROUPS, default="model", help="Group (default: model).")
        parser.add_argument(
            "--since", help="First day to count, YYYY-MM-DD (in the current time zone)."
        )
        parser.add_argument("--until", help="First day not to count, YYYY-MM-DD.")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument("--database", help="Database alias (default: the router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Aggregate in the database and print. Raises: CommandError for a bad date."""
        from django.db import router

        from creative_services.contrib.django import _usage
        from creative_services.contrib.django.models import LLMUsage

        alias = options["database"] or router.db_for_read(LLMUsage)
        qs = LLMUsage.objects.using(alias).all()
        since, until = _day(options["since"], "--since"), _day(options["until"], "--until")
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        if until is not None:
            qs = qs.filter(created_at__lt=until)
        by = options["by"]
        groups = _usage.grouped(qs, by)
        total = _usage.totals(qs)
        if options["json"]:
            document = {
                "by": by,
                "since": options["since"],
                "until": options["until"],
                "groups": [g.as_dict() for g in groups],
                "total": total.as_dict(),
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        self.stdout.write(_table(by, groups, total))
        if total.unpriced:
            self.stdout.write(f"{total.unpriced} call(s) without a known cost are counted as 0.")


def _day(text: str | None, option: str) -> dt.datetime | None:
    """Midnight of a YYYY-MM-DD day in the current time zone (aware when USE_TZ)."""
    if text is None:
        return None
    from django.conf import settings
    from django.utils import timezone

    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} must be a date like 2026-01-31, got {text!r}") from None
    midnight = dt.datetime.combine(day, dt.time.min)
    return timezone.make_aware(midnight) if settings.USE_TZ else midnight


def _table(by: str, groups: list[UsageSummary], total: UsageSummary) -> str:
    header = (by, "calls", "failures", "prompt", "completion", "total tokens", "cost USD")
    rows = [
        (
            s.key or "total",
            f"{s.calls:,}",
            f"{s.failures:,}",
            f"{s.prompt_tokens:,}",
            f"{s.completion_tokens:,}",
            f"{s.total_tokens:,}",
            decimal_text(s.cost),
        )
        for s in [*groups, total]
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows[:-1]]
    return "\n".join([line(header), rule, *body, rule, line(rows[-1])])
