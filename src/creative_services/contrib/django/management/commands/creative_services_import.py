"""``manage.py creative_services_import``: registry entries from JSON/TOML or the environment.

Rows are matched by ``name``: a new name creates a row, a known one updates the fields the input
gives (a field the input leaves out keeps its stored value; ``id`` is ignored). Keys given in
the input are stored as the model's ``api_key`` field stores them: encrypted for the shipped
model. A masked key (``"**********"``, as ``creative_services_export`` writes it) keeps the
stored key. Everything is validated first (as ``DictRegistry.from_dict`` does) and written in
one transaction, so a bad input changes nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from creative_services._secrets import remember
from creative_services.exceptions import ConfigurationError
from creative_services.types import LLMEntry

MASK = "**********"
"""How exported files show a stored key."""
_COLUMNS = (
    "provider", "model_name", "tier", "api_key", "api_endpoint", "max_tokens", "temperature",
    "cost_per_1k_input", "cost_per_1k_output", "is_active", "priority", "api_key_env",
)  # fmt: skip
_ENV_FIELDS = ("name", *_COLUMNS)


class Command(BaseCommand):
    """Create or update LLM rows (by name) from a file, stdin or ``DictRegistry.from_env()``."""

    help = (
        "Create or update LLM entries, matched by name, from a JSON or TOML registry file "
        "('-' reads stdin) or, with --from-env, from DictRegistry.from_env(). Keys are stored "
        "encrypted; a masked key keeps the stored one."
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``PATH``, ``--from-env``, ``--format``, ``--dry-run``, ``--database``."""
        parser.add_argument(
            "path", nargs="?", help="JSON or TOML file: a list of entries or {models: [...]}"
        )
        parser.add_argument(
            "--from-env",
            action="store_true",
            help="Import DictRegistry.from_env(): CREATIVE_SERVICES_MODELS or the provider keys.",
        )
        parser.add_argument(
            "--format",
            choices=["json", "toml"],
            help="Input format (default: from the file suffix; otherwise JSON, then TOML).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would change; write nothing."
        )
        parser.add_argument("--database", help="Database alias (default: the router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate everything, then upsert each entry in one transaction.

        Raises: CommandError for an unreadable or invalid input (nothing is written then).
        """
        from django.db import router, transaction

        from creative_services.contrib.django._rows import resolve_model
        from creative_services.contrib.django.conf import conf

        path, from_env = options["path"], options["from_env"]
        if (path is None) == (not from_env):
            raise CommandError("give a PATH ('-' for stdin) or --from-env, not both")
        try:
            model = resolve_model(conf.LLM_MODEL)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        items = _from_env() if from_env else _from_file(path, options["format"])
        alias = options["database"] or router.db_for_write(model)
        label = model._meta.label
        self._warn_unstored(items, model)

        counts = {"created": 0, "updated": 0, "unchanged": 0}
        dry_run = options["dry_run"]
        with transaction.atomic(using=alias):
            for given, entry in items:
                action, changed = self._upsert(model, alias, given, entry, dry_run=dry_run)
                counts[action] += 1
                detail = f": {', '.join(changed)}" if action == "updated" else ""
                verb = f"would be {action}" if dry_run and action != "unchanged" else action
                self.stdout.write(f"  {entry.name}: {verb}{detail}")
        summary = (
            f"{counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged"
        )
        if dry_run:
            self.stdout.write(f"Dry run, nothing written ({label}): {summary}.")
        else:
            message = f"Imported {len(items)} entries into {label}: {summary}."
            self.stdout.write(self.style.SUCCESS(message))

    def _upsert(
        self, model: Any, alias: str, given: set[str], entry: LLMEntry, *, dry_run: bool
    ) -> tuple[str, list[str]]:
        fields = {f.name: f for f in model._meta.concrete_fields}
        matches = list(model._base_manager.using(alias).filter(name=entry.name)[:2])
        if len(matches) > 1:
            raise CommandError(
                f"entry {entry.name!r}: several rows of {model._meta.label} have this name; "
                "import matches rows by name"
            )
        obj = matches[0] if matches else model(name=entry.name)
        wanted = given if matches else set(_COLUMNS)
        changed: list[str] = []
        for name in _COLUMNS:
            if name not in wanted or name not in fields:
                continue
            value = _value(entry, name, fields[name])
            if value is _SKIP:
                continue
            current = getattr(obj, name)
            if not matches or not _same(current, value):
                setattr(obj, name, value)
                changed.append(name)
        try:
            obj.full_clean(validate_unique=False)
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(
                f"entry {entry.name!r} does not fit {model._meta.label}: {problems}"
            ) from None
        if not matches:
            action = "created"
        elif changed:
            action = "updated"
        else:
            return "unchanged", []
        if not dry_run:
            obj.save(using=alias)
        return action, changed

    def _warn_unstored(self, items: list[tuple[set[str], LLMEntry]], model: Any) -> None:
        """Say which given values the model has no column for (e.g. a legacy ``Llms``)."""
        from creative_services.contrib.django.crypto import EncryptedTextField

        fields = {f.name: f for f in model._meta.concrete_fields}
        defaults = LLMEntry(name="x", provider="x", model_name="x")
        for given, entry in items:
            lost = [
                name
                for name in sorted(given)
                if name not in fields
                and name != "name"
                and getattr(entry, name, None) != getattr(defaults, name, None)
            ]
            if lost:
                self.stderr.write(
                    f"warning: entry {entry.name!r}: {model._meta.label} has no column for "
                    f"{', '.join(lost)}; not stored"
                )
            key_field = fields.get("api_key")
            if (
                "api_key" in given
                and entry.api_key
                and key_field is not None
                and not isinstance(key_field, EncryptedTextField)
            ):
                self.stderr.write(
                    f"warning: entry {entry.name!r}: {model._meta.label}.api_key is not "
                    "encrypted; the key is stored as that field stores it"
                )


_SKIP: Any = object()


def _value(entry: LLMEntry, name: str, field: Any) -> Any:
    """The value of ``name`` for the model field ``field`` (``_SKIP``: leave the default)."""
    value: Any = getattr(entry, name)
    if name == "tier":
        return entry.tier.value
    if name == "api_key":
        return entry.api_key.get_secret_value()
    if value is None and not field.null:
        return "" if field.empty_strings_allowed else _SKIP
    return value


def _same(current: Any, value: Any) -> bool:
    if isinstance(value, Decimal) and current is not None:
        return Decimal(str(current)) == value
    if isinstance(value, str) and current is None:
        return value == ""
    return bool(current == value)


def _from_env() -> list[tuple[set[str], LLMEntry]]:
    from creative_services.registry import DictRegistry

    try:
        registry = DictRegistry.from_env()
    except ConfigurationError as exc:
        raise CommandError(f"--from-env: {exc}") from None
    out = []
    for entry in registry.all_entries():
        given = set(_ENV_FIELDS)
        if not entry.api_key:
            given.discard("api_key")  # the environment keeps it: never clear a stored key
        out.append((given, entry))
    return out


def _from_file(path: str, fmt: str | None) -> list[tuple[set[str], LLMEntry]]:
    from creative_services.registry import DictRegistry

    where = "stdin" if path == "-" else repr(path)
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read registry file {where}: {exc}") from None
        if fmt is None and Path(path).suffix.lower() in (".json", ".toml"):
            fmt = Path(path).suffix.lower()[1:]
    data = _parse(text, fmt, where)
    if isinstance(data, Mapping):
        data = data.get("models")
    if not isinstance(data, list):
        raise CommandError(f"{where}: expected a list of entries or {{'models': [...]}}")
    items: list[dict[str, Any]] = []
    for item in data:  # no error below may show any row's key (see _secrets.py)
        if isinstance(item, Mapping):
            remember(item.get("api_key"))
    for position, item in enumerate(data, start=1):
        if not isinstance(item, Mapping):  # its values are not shown: any may be a key
            raise CommandError(
                f"{where}: entry #{position} must be a mapping, got {type(item).__name__}"
            )
        cleaned = {k: v for k, v in item.items() if k != "id"}
        key = cleaned.get("api_key")
        if isinstance(key, str) and key and set(key) == {"*"}:
            del cleaned["api_key"]  # masked by an export: keep the stored key
        items.append(cleaned)
    try:
        entries = DictRegistry.from_dict(items).all_entries()
    except ConfigurationError as exc:
        raise CommandError(f"{where}: {exc}") from None
    return [(set(item), entry) for item, entry in zip(items, entries, strict=True)]


def _parse(text: str, fmt: str | None, where: str) -> Any:
    import tomllib

    if fmt == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CommandError(f"registry file {where} is not valid TOML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as json_error:
        if fmt == "json":
            raise CommandError(f"registry file {where} is not valid JSON: {json_error}") from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as toml_error:
            raise CommandError(
                f"registry file {where} is neither valid JSON ({json_error}) nor valid TOML "
                f"({toml_error})"
            ) from None
