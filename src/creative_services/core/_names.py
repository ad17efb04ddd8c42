"""Where each name of the original ``creative_services.core`` modules lives now."""

_R = "creative_services._compat.registry"
_C = "creative_services._compat.llm_client"
_U = "creative_services._compat.usage_tracker"

REGISTRY = {
    "LLMTier": (_R, "creative_services.LLMTier"),
    "LLMEntry": (_R, "creative_services.LLMEntry (model_name= instead of model=)"),
    "LLMRegistry": (_R, "creative_services.LLMRegistry or creative_services.BaseRegistry"),
    "DictRegistry": (_R, "creative_services.DictRegistry (lookups raise instead of None)"),
    "DynamicLLMClient": (_R, "creative_services.DynamicLLMClient"),
}
CLIENT = {
    "LLMClient": (_C, "creative_services.DynamicLLMClient(DictRegistry([LLMEntry(...)]))"),
    "LLMConfig": (_C, "creative_services.LLMEntry"),
    "LLMProvider": (_C, "a provider name string ('openai', 'anthropic', ...)"),
    "LLMResponse": (_C, "creative_services.LLMResponse"),
    "CompletionResponse": (_C, "creative_services.completion.CompletionResponse"),
    "ToolCall": (_C, "creative_services.completion.CompletionToolCall"),
}
TRACKER = {
    "UsageRecord": (_U, "creative_services.UsageRecord"),
    "UsageStats": (_U, "creative_services.tracking.UsageTotals"),
    "UsageTracker": (_U, "creative_services.UsageTracker"),
    "InMemoryTracker": (_U, "creative_services.InMemoryUsageTracker"),
    "calculate_cost": (_U, "response.cost (creative_services.pricing.resolve_cost)"),
}
CORE = {**REGISTRY, **CLIENT, **TRACKER}
_D = "creative_services._compat.django"
_B = "creative_services._compat.bfagent"
DJANGO = {
    "DjangoLLMRegistry": (_D, "creative_services.contrib.django.registry.DjangoLLMRegistry"),
    "DjangoUsageTracker": (_D, "creative_services.contrib.django.tracking.DjangoUsageTracker"),
    "TIER_MAPPING": (_D, "creative_services.tier_map.TIER_MAPPING"),
}
BFAGENT = {
    "BFAgentLLMBridge": (_B, "creative_services.adapters.BFAgentLLMBridge"),
    "generate_text": (_B, "BFAgentLLMBridge().generate_text()"),
    "generate_text_async": (_B, "await AsyncBFAgentLLMBridge().generate_text()"),
}
TOP_LEVEL = {
    "LLMClient": CLIENT["LLMClient"],
    "LLMConfig": CLIENT["LLMConfig"],
    "LLMProvider": CLIENT["LLMProvider"],
    "InMemoryTracker": TRACKER["InMemoryTracker"],
}
