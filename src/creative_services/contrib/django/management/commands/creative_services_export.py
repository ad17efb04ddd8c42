"""``manage.py creative_services_export``: the LLM table as a JSON or TOML registry file.

The output is what ``DictRegistry.from_file`` and ``creative_services_import`` read. Keys are
never written in clear: a row with a stored key gets ``api_key = "**********"`` (which the import
reads as "keep the stored key"), and ``api_key_env`` names the variable when the row has one.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError

from creative_services.exceptions import ConfigurationError

MASK = "**********"
_ORDER = (
    "name", "provider", "model_name", "tier", "api_key", "api_key_env", "api_endpoint",
    "max_tokens", "temperature", "cost_per_1k_input", "cost_per_1k_output", "is_active",
    "priority",
)  # fmt: skip


class Command(BaseCommand):
    """Write every row of the configured LLM model as registry entries, keys masked."""

    help = (
        "Export the LLM table as a JSON or TOML registry file (DictRegistry.from_file and "
        "creative_services_import read it). Keys are masked, never written in clear."
    )
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: Any) -> None:
        """``--format``, ``-o/--output``, ``--database``."""
        parser.add_argument("--format", choices=["json", "toml"], default="json")
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output.")
        parser.add_argument("--database", help="Database alias (default: the router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the rows, mask the keys, write them out.

        Raises: CommandError when the model is unusable or the file cannot be written.
        """
        from django.db import router

        from creative_services.contrib.django._rows import columns, fetch_rows, resolve_model
        from creative_services.contrib.django.conf import conf

        try:
            model = resolve_model(conf.LLM_MODEL)
            cols = columns(model)
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        alias = options["database"] or router.db_for_read(model)
        entries = [_entry(dict(zip(cols, row, strict=True))) for row in fetch_rows(model, alias)]
        if options["format"] == "toml":
            text = to_toml(entries, source=model._meta.label)
        else:
            text = json.dumps({"models": entries}, indent=2, ensure_ascii=False) + "\n"
        output = options["output"]
        if output is None or output == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output!r}: {exc}") from None
        self.stderr.write(f"Wrote {len(entries)} entries of {model._meta.label} to {output}.")


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    from creative_services.contrib.django.crypto import UndecryptableKey

    out: dict[str, Any] = {}
    for name in _ORDER:
        if name not in row:
            continue
        value = row[name]
        if name == "api_key":
            stored = isinstance(value, UndecryptableKey) or bool(value)
            if stored:
                out[name] = MASK
            continue
        if isinstance(value, Decimal):
            value = format(value.normalize(), "f")
        elif name in ("api_endpoint", "api_key_env") and value == "":
            value = None
        out[name] = value
    return out


def to_toml(entries: list[dict[str, Any]], *, source: str) -> str:
    """``[[models]]`` tables; ``None`` values are left out (TOML has no null)."""
    lines = [f"# creative-services registry: {len(entries)} entries exported from {source}"]
    for entry in entries:
        lines += ["", "[[models]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    escaped = []
    for ch in text:
        if ch in '"\\':
            escaped.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            escaped.append(f"\\u{ord(ch):04x}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'
