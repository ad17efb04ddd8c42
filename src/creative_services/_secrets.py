"""What a provider key looks like, and masking: the one home for both.

Used to redact error messages and log lines, and by the cassette checks that refuse to store a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["KEY_SHAPES", "KEY_SHAPES_BY_KIND", "MASK", "key_kind", "redact"]

MASK = "**********"

KEY_SHAPES_BY_KIND: dict[str, re.Pattern[str]] = {
    kind: re.compile(rf"\b{pattern}")
    for kind, pattern in (
        ("an Anthropic key", r"sk-ant-[A-Za-z0-9_\-]{8,}"),
        ("an OpenRouter key", r"sk-or-[A-Za-z0-9_\-]{16,}"),
        ("an OpenAI-style key", r"sk-[A-Za-z0-9_\-]{16,}"),
        ("a Google API key", r"AIza[0-9A-Za-z_\-]{20,}"),
        ("a Groq key", r"gsk_[A-Za-z0-9]{16,}"),
        ("an xAI key", r"xai-[A-Za-z0-9]{16,}"),
        ("a Hugging Face token", r"hf_[A-Za-z0-9]{30,}"),
        ("a Replicate token", r"r8_[A-Za-z0-9]{30,}"),
        ("a Perplexity key", r"pplx-[A-Za-z0-9]{32,}"),
        ("a Fireworks key", r"fw_[A-Za-z0-9]{20,}"),
        ("an AWS access key id", r"(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        ("a Google OAuth token", r"ya29\.[0-9A-Za-z_\-]{20,}"),
        ("a bearer token", r"Bearer\s+[A-Za-z0-9._\-]{16,}"),
    )
}
"""Every key shape we know, most specific first, each named for the cassette linter's message."""

KEY_SHAPES = re.compile("|".join(f"(?:{p.pattern})" for p in KEY_SHAPES_BY_KIND.values()))
"""Any of :data:`KEY_SHAPES_BY_KIND`: what :func:`redact` masks in messages and log lines."""


def key_kind(text: str) -> str | None:
    """The kind of key ``text`` holds something shaped like (e.g. "an Anthropic key"), or None."""
    for kind, pattern in KEY_SHAPES_BY_KIND.items():
        if pattern.search(text):
            return kind
    return None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and anything shaped like a provider key masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return KEY_SHAPES.sub(MASK, text)
