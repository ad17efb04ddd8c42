"""Registries: where entries come from. :class:`LLMRegistry` is the protocol every one follows."""

from creative_services.registry._base import BaseRegistry, LLMRegistry
from creative_services.registry.dict import DictRegistry

__all__ = ["BaseRegistry", "DictRegistry", "LLMRegistry"]
