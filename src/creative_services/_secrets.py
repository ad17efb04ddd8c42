"""What a provider key looks like, and masking: the one home for both.

Used to redact error messages and log lines, and by the cassette checks that refuse to store a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["KEY_SHAPES", "MASK", "redact"]

MASK = "**********"

KEY_SHAPES = re.compile(
    r"\b(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{20,}"
    r"|gsk_[A-Za-z0-9]{16,}|xai-[A-Za-z0-9]{16,}|Bearer\s+[A-Za-z0-9._\-]{16,})"
)
"""Strings shaped like an OpenAI, Anthropic, Gemini, Groq or xAI key, or a bearer token."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and anything shaped like a provider key masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return KEY_SHAPES.sub(MASK, text)
