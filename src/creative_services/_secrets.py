"""What a provider key looks like, and masking: the one home for both.

Used to redact error messages and log lines, and by the cassette checks that refuse to store a key.

Known keys are masked wherever we build a message: every key a :class:`~creative_services.types.
Secret` was made from (registry entries, rows read from the environment or a file, Django rows),
and the values of the environment variables that hold keys (each provider's ``*_API_KEY``, any
entry's ``api_key_env``, and any variable whose name ends in ``_KEY``, ``_TOKEN`` or ``_SECRET``).
:func:`mask` is the one function that applies them; :class:`~creative_services.exceptions.
CreativeServicesError` calls it on every message, so no error of ours can show one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "KEY_ECHO",
    "KEY_SHAPES",
    "KEY_SHAPES_BY_KIND",
    "MASK",
    "echoed_raw",
    "key_kind",
    "known_keys",
    "mask",
    "redact",
    "remember",
    "remember_env",
]

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


KEY_ECHO = re.compile(
    r"(?P<lead>Incorrect API key provided:\s*)(?P<key>[^\s\"'\\,;]+?)(?=\.?(?:[\s\"'\\,;]|$))",
    re.IGNORECASE,
)
"""A key a provider echoes back in its error (OpenAI's 401 names the key it was sent, masked
by OpenAI when it looks like an OpenAI key, raw when it does not)."""


def echoed_raw(value: str) -> bool:
    """Whether ``value`` (what follows "Incorrect API key provided:") is not already masked."""
    return "*" not in value and value.upper() != "REDACTED"


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
    text = KEY_ECHO.sub(lambda m: m["lead"] + (MASK if echoed_raw(m["key"]) else m["key"]), text)
    return KEY_SHAPES.sub(MASK, text)


_MIN_KEY = 8
"""Shorter values are not masked: they would mask ordinary words (and are no real key)."""
_MIN_GUESSED = 16
"""For variables we only guess hold a key (by their name), a longer floor still."""
_MAX_REMEMBERED = 4096
_KEY_ENV_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET)$", re.IGNORECASE)
_remembered: set[str] = set()
_remembered_envs: set[str] = set()


def remember(value: object) -> None:
    """Mask ``value`` (a key) in every message built from now on; non-strings are ignored."""
    room = len(_remembered) < _MAX_REMEMBERED  # bounded: a process never holds many keys
    if room and isinstance(value, str) and len(value.strip()) >= _MIN_KEY:
        _remembered.add(value.strip())


def remember_env(name: object) -> None:
    """Mask the value of the environment variable ``name`` (an entry's ``api_key_env``)."""
    if isinstance(name, str) and name and len(_remembered_envs) < _MAX_REMEMBERED:
        _remembered_envs.add(name)


def known_keys(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every key value we know of, longest first (so a key is masked before its prefix)."""
    from creative_services._providers import PROVIDERS  # lazy: _providers imports types

    env = os.environ if environ is None else environ
    names = {n for spec in PROVIDERS.values() for n in spec.key_envs} | _remembered_envs
    values = {env.get(n, "").strip() for n in names} | _remembered
    values = {v for v in values if len(v) >= _MIN_KEY}
    values.update(
        v for n, v in env.items() if _KEY_ENV_NAME.search(n) and len(v.strip()) >= _MIN_GUESSED
    )
    return sorted({v.strip() for v in values}, key=len, reverse=True)


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets``, every known key (see :func:`known_keys`) and anything shaped
    like a provider key masked: what every message we build goes through."""
    extra = [s for s in secrets if isinstance(s, str)]
    return redact(text, sorted({*extra, *known_keys()}, key=len, reverse=True))
