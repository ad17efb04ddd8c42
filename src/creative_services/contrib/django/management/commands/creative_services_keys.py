"""``manage.py creative_services_keys create|list|revoke``: the gateway's virtual keys."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    """Create (printed once), list (never the keys) or revoke the gateway's virtual keys."""

    help = "Manage the gateway's virtual keys: create (printed once), list, revoke."
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``create --user U [--model M ...] [--expires-in S] [--name N]``, ``list``,
        ``revoke ID``."""
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--user", required=True)
        create.add_argument("--name", default="")
        create.add_argument("--model", action="append", default=[], dest="models")
        create.add_argument("--expires-in", type=float)
        sub.add_parser("list")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("key_id")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the action."""
        from creative_services.contrib.django.gateway_keys import DjangoKeyStore
        from creative_services.exceptions import InvalidRequestError

        store = DjangoKeyStore()
        action = options["action"]
        if action == "create":
            try:
                key, record = store.create(
                    options["user"], name=options["name"], models=options["models"],
                    expires_in=options["expires_in"],
                )  # fmt: skip
            except InvalidRequestError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(key)
            self.stderr.write(f"id {record.key_id}: shown once, store it now")
        elif action == "revoke":
            if not store.revoke(options["key_id"]):
                raise CommandError(f"no active key with id {options['key_id']}")
            self.stdout.write(f"revoked {options['key_id']}")
        else:
            now = dt.datetime.now(dt.UTC).timestamp()
            for k in store.list():
                models = ",".join(k.models) or "all"
                self.stdout.write(f"{k.key_id}  {k.state(now):8}  user={k.user_id}  {models}")
