"""``creative_services.adapters.bfagent_compat`` of the original package, over today's bridge."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from creative_services._compat import deprecated
from creative_services.bridges import BFAgentLLMBridge as _Bridge
from creative_services.registry import LLMRegistry
from creative_services.types import LLMEntry, LLMResponse, LLMTier

__all__ = ["BFAgentLLMBridge", "generate_text", "generate_text_async"]


def _describe(entry: LLMEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "name": entry.name,
        "provider": entry.provider,
        "model": entry.model_name,
        "tier": entry.tier.value,
    }


class BFAgentLLMBridge(_Bridge):
    """Today's sync bridge plus the original class's methods (each warns once when used)."""

    _instance: ClassVar[BFAgentLLMBridge | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    @property
    def registry(self) -> LLMRegistry:
        """The registry the bridge's client reads."""
        return self.client.registry

    @classmethod
    def with_django_registry(cls, llms_model_class: Any) -> BFAgentLLMBridge:
        """A bridge over ``DjangoLLMRegistry(llms_model_class)``."""
        deprecated(
            "BFAgentLLMBridge.with_django_registry(Llms)",
            "BFAgentLLMBridge(DjangoLLMRegistry(Llms))",
        )
        from creative_services.contrib.django.registry import DjangoLLMRegistry

        return cls(DjangoLLMRegistry(llms_model_class))

    @classmethod
    def get_instance(cls) -> BFAgentLLMBridge:
        """The process's one bridge over the default registry, made on first use."""
        deprecated("BFAgentLLMBridge.get_instance()", "one BFAgentLLMBridge() of your own")
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    async def generate_async(
        self,
        prompt: str,
        system_prompt: str | None = None,
        llm_id: int | None = None,
        tier: LLMTier | str | None = None,
        **kwargs: Any,
    ) -> LLMResponse:
        """The whole response, from async code."""
        deprecated(
            "BFAgentLLMBridge.generate_async()", "await DynamicLLMClient.generate() or "
            "AsyncBFAgentLLMBridge.generate_text()",
        )  # fmt: skip
        selection: dict[str, Any] = {"llm_id": llm_id} if llm_id is not None else {"tier": tier}
        return await self.client.generate(prompt, system_prompt, **selection, **kwargs)

    def get_available_llms(self) -> list[dict[str, Any]]:
        """The active entries as dicts (id, name, provider, model, tier), for UI lists."""
        deprecated("BFAgentLLMBridge.get_available_llms()", "registry.list_active()")
        return [_describe(e) for e in self.client.registry.list_active()]

    def get_llm_for_tier(self, tier: LLMTier | str) -> dict[str, Any] | None:
        """The entry a tier would use, as a dict; None for an unknown or empty tier."""
        deprecated("BFAgentLLMBridge.get_llm_for_tier()", "registry.get_by_tier(tier)")
        from creative_services.exceptions import ConfigurationError

        try:
            return _describe(self.client.registry.get_by_tier(LLMTier.parse(tier)))
        except ConfigurationError:
            return None


def _bridge() -> BFAgentLLMBridge:
    with BFAgentLLMBridge._instance_lock:
        if BFAgentLLMBridge._instance is None:
            BFAgentLLMBridge._instance = BFAgentLLMBridge()
        return BFAgentLLMBridge._instance


def generate_text(
    prompt: str,
    system_prompt: str | None = None,
    llm_id: int | None = None,
    tier: LLMTier | str = "standard",
    **kwargs: Any,
) -> str:
    """The answer's text from the process's one bridge (the original drop-in function)."""
    if llm_id is not None:
        kwargs["llm_id"] = llm_id
    return _bridge().generate_text(prompt, system_prompt, tier, **kwargs)


async def generate_text_async(
    prompt: str,
    system_prompt: str | None = None,
    llm_id: int | None = None,
    tier: LLMTier | str = "standard",
    **kwargs: Any,
) -> LLMResponse:
    """The whole response, from async code (the original drop-in function)."""
    selection: dict[str, Any] = {"llm_id": llm_id} if llm_id is not None else {"tier": tier}
    return await _bridge().client.generate(prompt, system_prompt, **selection, **kwargs)
