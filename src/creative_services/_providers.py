"""What we know about each provider, as plain data: the one home for provider facts.

Used by the zero-config registry (which env variables mean "this provider is available", which
model serves which tier) and by ``_litellm.py`` (how an entry becomes a LiteLLM model string and
``api_base``). Pure: nothing here imports LiteLLM or reads the environment at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from creative_services.exceptions import MissingAPIKeyError
from creative_services.types import LLMEntry, LLMTier

__all__ = [
    "PROVIDERS",
    "ZERO_CONFIG_ORDER",
    "ProviderSpec",
    "litellm_route",
    "provider_spec",
    "resolve_api_key",
]


def _strip(url: str) -> str:
    return url.strip().rstrip("/")


def _path_of(url: str) -> str:
    return urlsplit(url).path.rstrip("/")


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _verbatim(url: str) -> str:
    return _strip(url)


def _default_path(path: str) -> Callable[[str], str]:
    """Append ``path`` when the URL has none (``https://api.groq.com`` -> ``.../openai/v1``)."""

    def normalise(url: str) -> str:
        url = _strip(url)
        return url if _path_of(url) else _with_path(url, path)

    return normalise


def _anthropic(url: str) -> str:
    # LiteLLM appends /v1/messages itself: a documented ".../v1" would become /v1/v1/messages.
    url = _strip(url)
    for tail in ("/v1/messages", "/v1"):
        if _path_of(url).endswith(tail):
            return _with_path(url, _path_of(url)[: -len(tail)])
    return url


def _gemini(url: str) -> str:
    # LiteLLM sends <api_base>/models/<m>:generateContent, so the version must be in api_base.
    url = _strip(url)
    return url if _path_of(url).rsplit("/", 1)[-1].startswith("v1") else url + "/v1beta"


def _cohere(url: str) -> str:
    # LiteLLM uses a Cohere api_base verbatim as the full chat URL.
    url = _strip(url)
    path = _path_of(url)
    if path.endswith("/chat"):
        return url
    if path.endswith("/v2"):
        return url + "/chat"
    return _with_path(url, path + "/v2/chat")


def _ollama(url: str) -> str:
    url = _strip(url)
    if "://" not in url:  # OLLAMA_HOST is often "localhost:11434" or "0.0.0.0"
        url = "http://" + url
    for tail in ("/api/chat", "/api", "/v1"):
        if _path_of(url).endswith(tail):
            return _with_path(url, _path_of(url)[: -len(tail)])
    return url


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """How one provider is reached through LiteLLM, and its zero-config defaults."""

    name: str
    litellm_prefix: str
    key_envs: tuple[str, ...] = ()
    """Variables that may hold the key, first found wins; empty: no key needed."""
    base_url_envs: tuple[str, ...] = ()
    default_base_url: str | None = None
    normalise_base: Callable[[str], str] = _verbatim
    tier_models: dict[LLMTier, str] = field(default_factory=dict)
    """Zero-config: the model each tier gets when only this provider's key is set."""
    presence_envs: tuple[str, ...] = ()
    """Variables whose presence enables zero-config (defaults to ``key_envs``)."""
    key_optional: bool = False
    price_providers: tuple[str, ...] | None = None
    """``litellm_provider`` values of LiteLLM's price map that price this provider's models
    (None: the provider's own name; empty for gateways, whose prices we cannot know)."""

    @property
    def key_env(self) -> str | None:
        """The variable named in errors and docs."""
        return self.key_envs[0] if self.key_envs else None

    @property
    def priced_by(self) -> tuple[str, ...]:
        """The price map providers to look this provider's models up under."""
        return (self.name,) if self.price_providers is None else self.price_providers


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            "openai",
            "openai",
            ("OPENAI_API_KEY",),
            ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
            "https://api.openai.com/v1",
            tier_models={
                LLMTier.ECONOMY: "gpt-4.1-nano",
                LLMTier.STANDARD: "gpt-4.1-mini",
                LLMTier.PREMIUM: "gpt-4.1",
            },
        ),
        ProviderSpec(
            "anthropic",
            "anthropic",
            ("ANTHROPIC_API_KEY",),
            ("ANTHROPIC_BASE_URL",),
            "https://api.anthropic.com",
            _anthropic,
            {
                LLMTier.ECONOMY: "claude-haiku-4-5",
                LLMTier.STANDARD: "claude-sonnet-4-6",
                LLMTier.PREMIUM: "claude-opus-4-7",
            },
        ),
        ProviderSpec(
            "gemini",
            "gemini",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
            ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
            "https://generativelanguage.googleapis.com",
            _gemini,
            {
                LLMTier.ECONOMY: "gemini-2.5-flash-lite",
                LLMTier.STANDARD: "gemini-2.5-flash",
                LLMTier.PREMIUM: "gemini-2.5-pro",
            },
        ),
        ProviderSpec(
            "mistral",
            "mistral",
            ("MISTRAL_API_KEY",),
            ("MISTRAL_BASE_URL", "MISTRAL_API_BASE"),
            "https://api.mistral.ai/v1",
            tier_models={
                LLMTier.ECONOMY: "mistral-small-latest",
                LLMTier.STANDARD: "mistral-medium-latest",
                LLMTier.PREMIUM: "mistral-large-latest",
            },
        ),
        # Groq goes through LiteLLM's openai/ route: LiteLLM 1.110.2's groq/ route crashes on
        # every answer without "service_tier" ('ModelResponse' object has no attribute ...).
        ProviderSpec(
            "groq",
            "openai",
            ("GROQ_API_KEY",),
            ("GROQ_BASE_URL", "GROQ_API_BASE"),
            "https://api.groq.com/openai/v1",
            _default_path("/openai/v1"),
            {LLMTier.ECONOMY: "openai/gpt-oss-20b", LLMTier.STANDARD: "openai/gpt-oss-120b"},
        ),
        ProviderSpec(
            "deepseek",
            "deepseek",
            ("DEEPSEEK_API_KEY",),
            ("DEEPSEEK_BASE_URL", "DEEPSEEK_API_BASE"),
            "https://api.deepseek.com",
            tier_models={LLMTier.ECONOMY: "deepseek-chat"},
        ),
        ProviderSpec(
            "cohere",
            "cohere_chat",
            ("COHERE_API_KEY", "CO_API_KEY"),
            ("COHERE_BASE_URL", "CO_API_URL"),
            "https://api.cohere.com",
            _cohere,
            {LLMTier.STANDARD: "command-a-03-2025"},
            price_providers=("cohere", "cohere_chat"),
        ),
        ProviderSpec(
            "openrouter",
            "openrouter",
            ("OPENROUTER_API_KEY",),
            ("OPENROUTER_BASE_URL", "OPENROUTER_API_BASE"),
            "https://openrouter.ai/api/v1",
            _default_path("/api/v1"),
            {
                LLMTier.ECONOMY: "openai/gpt-4.1-nano",
                LLMTier.STANDARD: "openai/gpt-4.1-mini",
                LLMTier.PREMIUM: "anthropic/claude-sonnet-4.6",
            },
        ),
        ProviderSpec(
            "ollama",
            "ollama_chat",
            (),
            ("OLLAMA_HOST", "OLLAMA_BASE_URL"),
            "http://localhost:11434",
            _ollama,
            {LLMTier.LOCAL: "llama3.2"},
            presence_envs=("OLLAMA_HOST", "OLLAMA_BASE_URL"),
            key_optional=True,
        ),
        ProviderSpec(
            "azure",
            "azure",
            ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
            ("AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"),
        ),
        # Any server speaking the OpenAI chat API (vLLM, LM Studio, LiteLLM Proxy, a gateway):
        # api_endpoint is required, the key is optional.
        ProviderSpec("openai_compatible", "openai", (), (), key_optional=True, price_providers=()),
    )
}

_ALIASES = {
    "google": "gemini",
    "openai-compatible": "openai_compatible",
    "openai_compat": "openai_compatible",
    "custom": "openai_compatible",
    "cohere_chat": "cohere",
    "ollama_chat": "ollama",
}

ZERO_CONFIG_ORDER = (
    "openai",
    "anthropic",
    "gemini",
    "mistral",
    "groq",
    "deepseek",
    "cohere",
    "openrouter",
    "ollama",
)
"""Provider preference when several keys are set (the fallback order inside a tier)."""


def provider_spec(provider: str) -> ProviderSpec | None:
    """The spec of a known provider (aliases folded), or None for any other LiteLLM provider."""
    name = provider.strip().lower()
    return PROVIDERS.get(_ALIASES.get(name, name))


def litellm_route(
    provider: str, model_name: str, api_endpoint: str | None
) -> tuple[str, str | None]:
    """The LiteLLM model string and ``api_base`` for an entry.

    ``api_endpoint`` is the base URL the provider documents; it is turned into what LiteLLM needs
    (Gemini wants ``/v1beta``, Cohere the full ``/v2/chat`` URL, Anthropic no ``/v1``).
    Providers we have no spec for are passed to LiteLLM as ``provider/model_name``.
    """
    spec = provider_spec(provider)
    if spec is None:
        return f"{provider}/{model_name}", _strip(api_endpoint) if api_endpoint else None
    if not api_endpoint and spec.litellm_prefix != spec.name and spec.default_base_url:
        # Routed through another provider's LiteLLM prefix (groq -> openai/): that prefix's
        # default URL would be the wrong host.
        api_endpoint = spec.default_base_url
    api_base = spec.normalise_base(api_endpoint) if api_endpoint else None
    return f"{spec.litellm_prefix}/{model_name}", api_base


def resolve_api_key(entry: LLMEntry, environ: Mapping[str, str]) -> str | None:
    """The key for a call: the entry's own, else its ``api_key_env``, else the provider's usual
    variable. None when the provider needs none. Raises: MissingAPIKeyError naming the variable."""
    if entry.api_key:
        return entry.api_key.get_secret_value()
    spec = provider_spec(entry.provider)
    names = (entry.api_key_env,) if entry.api_key_env else (spec.key_envs if spec else ())
    for name in names:
        value = environ.get(name or "")
        if value:
            return value
    if entry.api_key_env or (spec is not None and not spec.key_optional):
        raise MissingAPIKeyError(entry.name, entry.api_key_env or (spec.key_env if spec else None))
    return None
