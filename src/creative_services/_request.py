"""Pure validation of call arguments: a typed error before any network call or reservation."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from creative_services.exceptions import InvalidRequestError

__all__ = [
    "CHAT_PARAMS",
    "EMBEDDING_PARAMS",
    "MAX_DEPTH",
    "MAX_ID_LENGTH",
    "MAX_METADATA_BYTES",
    "MAX_TOKENS_LIMIT",
    "RESPONSES_PARAMS",
    "build_messages",
    "check_json",
    "check_max_tokens",
    "check_member_id",
    "check_metadata",
    "check_provider_params",
    "check_temperature",
    "check_timeout",
    "check_tools",
    "forward_params",
]

_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOOL_CHOICES = frozenset({"auto", "none", "required"})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
MAX_TOKENS_LIMIT = 1_000_000


def _check_text(value: object, where: str, *, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"{where} must be a string, got {type(value).__name__}", param=param
        )
    _check_str(value, where, param=param)
    return value


def _as_mapping(message: object) -> object:
    """A message object (the openai SDK's ``ChatCompletionMessage``, any pydantic model) as the
    dict it stands for; anything else as it is."""
    if isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)
    if callable(dump):
        value = dump(exclude_none=True)
        if isinstance(value, Mapping):
            return value
    return message


def build_messages(
    prompt: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    system_prompt: str | None,
) -> list[dict[str, Any]]:
    """The OpenAI-format message list for a call (dicts, or message objects such as
    ``reply.choices[0].message``). Raises: InvalidRequestError."""
    if prompt is None and not messages:
        raise InvalidRequestError("give a prompt or a non-empty messages list", param="prompt")
    result: list[dict[str, Any]] = []
    if system_prompt is not None:
        _check_text(system_prompt, "system_prompt", param="system_prompt")
        if system_prompt.strip():
            result.append({"role": "system", "content": system_prompt})
    if messages is not None:
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise InvalidRequestError("messages must be a list of dicts", param="messages")
        for i, message in enumerate(map(_as_mapping, messages)):
            if not isinstance(message, Mapping):
                raise InvalidRequestError(f"messages[{i}] must be a dict", param="messages")
            role = message.get("role")
            if not isinstance(role, str) or role not in ROLES:  # unhashable roles: no TypeError
                raise InvalidRequestError(
                    f"messages[{i}].role is {role!r}; valid roles: {', '.join(sorted(ROLES))}",
                    param="messages",
                )
            content = message.get("content")
            if isinstance(content, str):
                _check_text(content, f"messages[{i}].content", param="messages")
                if not content.strip() and role != "assistant":
                    raise InvalidRequestError(f"messages[{i}].content is empty", param="messages")
            elif isinstance(content, list):  # content parts (images, text blocks)
                if not content:
                    raise InvalidRequestError(f"messages[{i}].content is empty", param="messages")
            elif not (content is None and role == "assistant" and message.get("tool_calls")):
                raise InvalidRequestError(
                    f"messages[{i}].content must be a string or a list of parts, "
                    f"got {type(content).__name__}",
                    param="messages",
                )
            check_json(message, f"messages[{i}]", param="messages")
            result.append(dict(message))
    if prompt is not None:
        _check_text(prompt, "prompt", param="prompt")
        if not prompt.strip():
            raise InvalidRequestError("prompt is empty", param="prompt")
        result.append({"role": "user", "content": prompt})
    if not any(m["role"] != "system" for m in result):
        raise InvalidRequestError("messages hold only a system prompt", param="messages")
    return result


def check_max_tokens(value: object) -> int:
    """A positive integer up to :data:`MAX_TOKENS_LIMIT`. Raises: InvalidRequestError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_LIMIT:
        raise InvalidRequestError(
            f"max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT}, got {value!r}",
            param="max_tokens",
        )
    return value


def check_temperature(value: object) -> float:
    """A finite number in [0, 2]. Raises: InvalidRequestError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 2
    ):
        raise InvalidRequestError(
            f"temperature must be a number from 0 to 2, got {value!r}", param="temperature"
        )
    return float(value)


def check_timeout(value: object) -> float:
    """A finite number of seconds > 0. Raises: InvalidRequestError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequestError(f"timeout must be seconds > 0, got {value!r}", param="timeout")
    return float(value)


def check_tools(tools: object, tool_choice: object) -> None:
    """OpenAI-format ``tools`` (LiteLLM converts them for each provider) and ``tool_choice``.

    Raises: InvalidRequestError.
    """
    names: list[str] = []
    if tools is not None:
        if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence) or not tools:
            raise InvalidRequestError(
                'tools must be a non-empty list like [{"type": "function", "function": '
                '{"name": ..., "parameters": {...}}}]',
                param="tools",
            )
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, Mapping) else None
            if (
                not isinstance(tool, Mapping)
                or tool.get("type") != "function"
                or not (isinstance(function, Mapping))
            ):
                raise InvalidRequestError(
                    f'tools[{i}] must be {{"type": "function", "function": {{...}}}}',
                    param="tools",
                )
            name = function.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
                raise InvalidRequestError(
                    f"tools[{i}].function.name must be 1-64 letters, digits, _ or -, got {name!r}",
                    param="tools",
                )
            parameters = function.get("parameters")
            if parameters is not None and not isinstance(parameters, Mapping):
                raise InvalidRequestError(
                    f"tools[{i}].function.parameters must be a JSON schema object",
                    param="tools",
                )
            names.append(name)
    if tool_choice is None:
        return
    if not names:
        raise InvalidRequestError("tool_choice needs tools", param="tool_choice")
    if isinstance(tool_choice, str):
        if tool_choice not in _TOOL_CHOICES:
            raise InvalidRequestError(
                f"tool_choice must be one of {sorted(_TOOL_CHOICES)} or "
                f'{{"type": "function", "function": {{"name": ...}}}}, got {tool_choice!r}',
                param="tool_choice",
            )
        return
    function = tool_choice.get("function") if isinstance(tool_choice, Mapping) else None
    chosen = function.get("name") if isinstance(function, Mapping) else None
    if chosen not in names:
        raise InvalidRequestError(
            f"tool_choice must name one of the tools ({', '.join(names)}), got {tool_choice!r}",
            param="tool_choice",
        )


# --- per-call provider parameters: an allow-list -----------------------------------------------

_ALWAYS = frozenset({"extra_body", "extra_headers", "extra_query", "user"})
CHAT_PARAMS = _ALWAYS | frozenset({
    # the chat.completions body fields of the openai SDK (tests/test_provider_params.py keeps
    # this list complete against the installed SDK), ``model``/``messages``/``stream*`` aside
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "prompt_cache_options", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "temperature", "tool_choice",
    "tools", "top_logprobs", "top_p", "verbosity", "web_search_options",
    # generation parameters LiteLLM translates for other providers
    "top_k", "thinking", "safety_settings",
})  # fmt: skip
"""What ``generate()``/``stream()`` pass to the provider per call without asking the entry."""
EMBEDDING_PARAMS = _ALWAYS | frozenset({"dimensions", "encoding_format", "input"})
RESPONSES_PARAMS = _ALWAYS | frozenset({
    "access_programs", "background", "background_options", "context_management", "conversation",
    "image", "include", "input", "instructions", "max_output_tokens", "max_tool_calls",
    "metadata", "moderation", "parallel_tool_calls", "previous_response_id", "prompt",
    "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning",
    "safety_identifier", "service_tier", "store", "temperature", "text", "tool_choice", "tools",
    "top_logprobs", "top_p", "truncation",
})  # fmt: skip

_ROUTING = frozenset({
    "model", "messages", "api_key", "api_base", "base_url", "api_version", "api_type",
    "custom_llm_provider", "client", "organization", "deployment_id", "headers", "ssl_verify",
    "num_retries", "max_retries", "timeout", "request_timeout", "fallbacks", "model_list",
    "context_window_fallback_dict", "base_model", "logger_fn", "caching", "cache",
    "no-log", "proxy_server_request", "preset_cache_key", "model_info", "tenant_id",
    "client_id", "client_secret", "project", "location", "region_name", "max_budget",
})  # fmt: skip
_ROUTING_PREFIXES = (
    "litellm_", "mock_", "aws_", "azure_", "vertex_", "watsonx_", "input_cost_",
    "output_cost_", "cost_", "user_api_key", "api_",
)  # fmt: skip


def _is_routing(name: str) -> bool:
    """Does LiteLLM read ``name`` as the destination, a credential, a price or a retry layer?"""
    return name in _ROUTING or name.startswith(_ROUTING_PREFIXES)


def _refuse_routing(name: str) -> None:
    if _is_routing(name):
        raise InvalidRequestError(
            f"{name!r} is chosen by the registry, not passed per call: it would change where "
            "the call goes, the credentials it sends, what it costs or how it is retried "
            "(set the entry's provider, api_endpoint or api_key instead)",
            param=name,
        )


def check_provider_params(
    params: Mapping[str, Any], entries: Sequence[Any], known: frozenset[str] = CHAT_PARAMS
) -> None:
    """Refuse, before any network call, a per-call parameter that is not a generation parameter.

    Allowed: ``known``, and a name that every entry in ``entries`` sets in its ``extra_params``
    (its operator chose it). Never allowed: the destination, credentials, prices, mocks and
    retry layers. Raises: InvalidRequestError naming the parameter.
    """
    for name, value in params.items():
        _refuse_routing(name)
        if name in ("extra_body", "extra_headers") and not isinstance(value, Mapping):
            raise InvalidRequestError(f"{name} must be an object (a dict)", param=name)
        check_json(value, name, param=name)
        if name in known:
            continue
        without = [e.name for e in entries if name not in e.extra_params]
        if without:
            raise InvalidRequestError(
                f"{name!r} is not a generation parameter that is passed per call (entry "
                f"{without[0]!r} does not set it in extra_params): send a provider-specific "
                f"field as extra_body={{{name!r}: ...}}, or set {name!r} in the entry's "
                "extra_params to allow it per call",
                param=name,
            )


def forward_params(params: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """An OpenAI request body's fields as per-call parameters, for the drop-in and the gateway.

    The SDK puts ``extra_body`` fields at the top of the body; a field that is not in ``known``
    goes back into ``extra_body``, so it reaches the provider as it was sent. Raises:
    InvalidRequestError for a field that would change the destination or credentials.
    """
    result: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in params.items():
        _refuse_routing(name)
        (result if name in known else extra)[name] = value
    if extra:
        sent = result.get("extra_body") or {}
        if not isinstance(sent, Mapping):
            raise InvalidRequestError("extra_body must be an object", param="extra_body")
        result["extra_body"] = {**extra, **sent}
    return result


MAX_DEPTH = 32
MAX_METADATA_BYTES = 65_536
MAX_ID_LENGTH = 255
_SCALARS = (bool, int, str, type(None))


def _check_str(value: str, where: str, *, param: str) -> None:
    if "\x00" in value:
        raise InvalidRequestError(f"{where} contains a NUL byte", param=param)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(
            f"{where} is not valid text (it holds a lone surrogate)", param=param
        ) from None


def check_json(value: object, where: str, *, param: str, depth: int = 0) -> None:
    """Refuse what JSON, PostgreSQL ``jsonb`` or a provider cannot take: other types than
    dict/list/str/number/bool/None, non-str keys, NaN or infinity, NUL, lone surrogates, and
    nesting deeper than :data:`MAX_DEPTH`. Raises: InvalidRequestError naming ``where``."""
    if depth > MAX_DEPTH:
        raise InvalidRequestError(f"{where} is nested deeper than {MAX_DEPTH} levels", param=param)
    if isinstance(value, str):
        _check_str(value, where, param=param)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequestError(f"{where} is {value!r}, not a JSON number", param=param)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequestError(f"{where} has a non-string key {key!r}", param=param)
            _check_str(key, f"{where} key", param=param)
            check_json(item, f"{where}.{key}", param=param, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, f"{where}[{i}]", param=param, depth=depth + 1)
    elif not isinstance(value, _SCALARS):
        raise InvalidRequestError(
            f"{where} is a {type(value).__name__}, which JSON cannot hold", param=param
        )


def check_metadata(value: object) -> dict[str, Any]:
    """A call's ``metadata``: a JSON object of at most :data:`MAX_METADATA_BYTES`, stored with its
    usage record. Raises: InvalidRequestError."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"metadata must be a dict, got {type(value).__name__}", param="metadata"
        )
    check_json(value, "metadata", param="metadata")
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InvalidRequestError(
            f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}",
            param="metadata",
        )
    return dict(value)


def check_member_id(value: object, param: str) -> int | str | None:
    """A ``user_id``/``tenant_id``: None, an int, a UUID (as its text) or text of at most
    :data:`MAX_ID_LENGTH` characters (the usage and budget columns hold 255).
    Raises: InvalidRequestError."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"{param} must be an int, a UUID or a string, got {type(value).__name__}",
            param=param,
        )
    _check_str(value, param, param=param)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequestError(
            f"{param} must be at most {MAX_ID_LENGTH} characters, got {len(value)}", param=param
        )
    return value
