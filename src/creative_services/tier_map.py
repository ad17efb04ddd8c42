"""Which tier a model belongs to, for tables that store no tier (BFAgent's ``llms``).

:data:`TIER_MAPPING` is data: model name -> tier. It keeps the original package's assignments
(``gpt-4o-mini`` standard, ``gpt-4o`` premium, ...) so existing rows keep their tier, and adds
current models of each provider. :func:`derive_tier` is pure: exact name first, then the longest
mapped name the model name starts with followed by ``-``, ``:``, ``@`` or ``.`` (so
``claude-3-5-haiku-20241022`` is ``claude-3-5-haiku``), then ``local`` for Ollama, then the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from creative_services.types import LLMTier

__all__ = ["TIER_MAPPING", "TierRule", "derive_tier"]

_E, _S, _P, _L = LLMTier.ECONOMY, LLMTier.STANDARD, LLMTier.PREMIUM, LLMTier.LOCAL

TIER_MAPPING: Mapping[str, LLMTier] = {
    # OpenAI
    "gpt-3.5-turbo": _E, "gpt-4.1-nano": _E, "gpt-5-nano": _E,
    "gpt-4o-mini": _S, "gpt-4.1-mini": _S, "gpt-5-mini": _S, "o3-mini": _S, "o4-mini": _S,
    "gpt-4o": _P, "gpt-4-turbo": _P, "gpt-4": _P, "gpt-4.1": _P, "gpt-5": _P, "o1": _P, "o3": _P,
    # Anthropic
    "claude-3-haiku": _E, "claude-3-5-haiku": _E, "claude-haiku-4-5": _E,
    "claude-3-sonnet": _S, "claude-3-5-sonnet": _S, "claude-3-7-sonnet": _S,
    "claude-sonnet-4": _S, "claude-sonnet-4-5": _S,
    "claude-3-opus": _P, "claude-opus-4": _P, "claude-opus-4-1": _P,
    # Google Gemini
    "gemini-2.0-flash-lite": _E, "gemini-2.5-flash-lite": _E,
    "gemini-2.0-flash": _S, "gemini-2.5-flash": _S, "gemini-2.5-pro": _P,
    # Mistral
    "mistral-small": _E, "mistral-medium": _S, "mistral-large": _P,
    # Groq
    "llama-3.1-8b-instant": _E, "llama-3.3-70b-versatile": _E, "mixtral-8x7b-32768": _E,
    # DeepSeek
    "deepseek-chat": _E, "deepseek-reasoner": _S,
    # Local (Ollama model names)
    "llama3.2": _L, "llama3.1": _L, "llama3": _L, "mistral": _L, "qwen2.5": _L, "phi3": _L,
}  # fmt: skip
"""Model name -> tier; the default mapping of :func:`derive_tier`."""

TierRule = Mapping[str, LLMTier | str] | Callable[[str, str], LLMTier | str | None]
"""A mapping from model name to tier, or ``rule(model_name, provider) -> tier | None``."""

_BOUNDARY = "-:@."


def _lookup(name: str, mapping: Mapping[str, LLMTier | str]) -> LLMTier | str | None:
    folded = {k.lower(): v for k, v in mapping.items()}
    if name in folded:
        return folded[name]
    best = max(
        (k for k in folded if name.startswith(k) and name[len(k)] in _BOUNDARY),
        key=len,
        default=None,
    )
    return None if best is None else folded[best]


def derive_tier(
    model_name: str,
    provider: str = "",
    rule: TierRule | None = None,
    default: LLMTier | str = LLMTier.STANDARD,
) -> LLMTier:
    """The tier of ``model_name`` by ``rule`` (default :data:`TIER_MAPPING`), else ``default``.

    A ``provider/`` prefix on the name is ignored; an unmapped Ollama model is ``local``.
    Raises: InvalidTierError when the rule or ``default`` names no tier.
    """
    name = model_name.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    if callable(rule):
        found = rule(model_name, provider)
    else:
        found = _lookup(name, TIER_MAPPING if rule is None else rule)
    if found is None and provider.strip().lower() == "ollama":
        found = LLMTier.LOCAL
    return LLMTier.parse(default if found is None else found)
