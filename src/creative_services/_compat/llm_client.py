"""``creative_services.core.llm_client`` of the original package: a one-entry client.

``LLMClient(LLMConfig(provider=LLMProvider.OPENAI, model="gpt-4o-mini"))`` is a
:class:`~creative_services.DynamicLLMClient` over a registry of exactly that entry: the same
retries, usage records and errors. The key, when not given, is the provider's usual variable
(``OPENAI_API_KEY``), read at each call; ``<PROVIDER>_BASE_URL`` points it at a proxy.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from creative_services._providers import PROVIDERS
from creative_services.client import DynamicLLMClient
from creative_services.completion import CompletionResponse
from creative_services.completion import CompletionToolCall as ToolCall
from creative_services.registry import DictRegistry
from creative_services.types import LLMEntry, LLMResponse, LLMTier, Secret

__all__ = [
    "CompletionResponse",
    "LLMClient",
    "LLMConfig",
    "LLMProvider",
    "LLMResponse",
    "ToolCall",
]


class LLMProvider(enum.StrEnum):
    """The original package's providers."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GROQ = "groq"
    OLLAMA = "ollama"


@dataclass(frozen=True)
class LLMConfig:
    """One model to call: the original package's configuration (the key never shows in repr)."""

    provider: LLMProvider | str = LLMProvider.OPENAI
    model: str = "gpt-4o-mini"
    api_key: Secret | str | None = field(default=None, repr=False)
    temperature: float = 0.7
    max_tokens: int = 4096
    base_url: str | None = None
    tier: LLMTier | str = LLMTier.STANDARD

    def to_entry(self, environ: Mapping[str, str] | None = None) -> LLMEntry:
        """The registry entry of this configuration. Raises: InvalidEntryError."""
        provider = str(self.provider).strip().lower()
        env = os.environ if environ is None else environ
        spec = PROVIDERS.get(provider.lower())
        base = self.base_url or next(
            (env[v] for v in (spec.base_url_envs if spec else ()) if env.get(v)), None
        )
        return LLMEntry(
            name=f"{provider}/{self.model}",
            provider=provider,
            model_name=self.model,
            tier=LLMTier.LOCAL if provider == "ollama" else self.tier,
            api_key=self.api_key if self.api_key is not None else "",
            api_endpoint=base,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )


class LLMClient(DynamicLLMClient):
    """The original one-model client: ``await LLMClient(config).generate(prompt, system)``.

    ``kwargs`` (``tracker=``, ``retry_policy=``, ...) are those of DynamicLLMClient.
    """

    def __init__(self, config: LLMConfig | None = None, **kwargs: Any) -> None:
        self.config = config or LLMConfig()
        environ = kwargs.get("environ")
        super().__init__(DictRegistry([self.config.to_entry(environ)]), **kwargs)

    def __repr__(self) -> str:
        return f"LLMClient({self.config!r})"

    async def complete(  # the tier is fixed: one entry
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        tier: LLMTier | str | None = None,
        **kwargs: Any,
    ) -> CompletionResponse:
        """A chat turn (tools: OpenAI- or Anthropic-style); the original response shape."""
        return await super().complete(messages, tools, None, **kwargs)
