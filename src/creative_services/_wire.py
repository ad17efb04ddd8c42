"""The OpenAI wire format <-> :class:`DynamicLLMClient`: requests, answers, streams and errors.

Pure translation with no ``openai`` import, so that the drop-in's transport and an HTTP gateway
share it: a request body becomes ``generate()`` keyword arguments (what the caller sent, nothing
added), an :class:`LLMResponse` becomes the provider's JSON answer or SSE chunks, and our errors
become the HTTP status, headers and OpenAI error body the SDK turns into its own exceptions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from creative_services._request import CHAT_PARAMS, forward_params
from creative_services.exceptions import (
    AllModelsFailedError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    ContentPolicyError,
    ContextWindowExceededError,
    CreativeServicesError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelNotFoundError,
    NoActiveEntryError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    StructuredOutputError,
    UnknownModelError,
)
from creative_services.registry import LLMRegistry
from creative_services.types import LLMEntry, LLMResponse, LLMTier

__all__ = [
    "ChatCall",
    "ChunkEncoder",
    "WireError",
    "chat_call",
    "completion_body",
    "endpoint_body",
    "error_answer",
    "models_body",
    "not_served",
    "resolve_model",
]

TIERS = frozenset(t.value for t in LLMTier)

_OWN_HEADERS = frozenset(
    {"authorization", "accept", "accept-encoding", "connection", "content-length",
     "content-type", "host", "user-agent", "openai-organization", "openai-project"}
)  # fmt: skip
"""Headers the SDK or HTTP sets: not the caller's, never forwarded (the key is the registry's)."""


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One chat request in our terms: ``kwargs`` go to ``generate()`` / ``stream()``."""

    model: str
    stream: bool
    include_usage: bool
    kwargs: dict[str, Any]


def _forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower() not in _OWN_HEADERS and not k.lower().startswith("x-stainless-")
    }


_OUR_ARGUMENTS = frozenset({
    "prompt", "system_prompt", "tier", "llm_id", "llm_name", "user_id", "tenant_id", "cache",
    "escalate", "entry_defaults", "idle_timeout", "total_timeout",
})  # fmt: skip
"""Arguments of ``generate()``/``stream()`` that are not OpenAI body fields: a request body may
not set them (a gateway caller could otherwise escalate past its key's tiers or lift the
stream bounds)."""


def chat_call(body: object, headers: Mapping[str, str], query: Mapping[str, str]) -> ChatCall:
    """A ``/chat/completions`` request body as a call. Raises: InvalidRequestError.

    Every parameter the caller sent is forwarded under its own name and nothing else is added
    (the entry's default ``temperature``/``max_tokens`` are not sent). ``user`` also names the
    usage record's user and ``metadata`` is also the record's metadata. The caller's own headers
    (``default_headers``, ``extra_headers``) go to the provider; ``query`` (``extra_query``)
    (``extra_query``) goes to the provider's URL (OpenAI-compatible entries only).
    """
    if not isinstance(body, Mapping):
        raise InvalidRequestError("the request body must be a JSON object", param="body")
    params = dict(body)
    ours = sorted(_OUR_ARGUMENTS.intersection(params))
    if ours:
        raise InvalidRequestError(
            f"{ours[0]!r} is not a chat.completions parameter (it is an argument of "
            f"creative_services' own client, not settable from a request)",
            param=ours[0],
        )
    model = params.pop("model", None)
    if not isinstance(model, str):
        raise InvalidRequestError("model must be a string", param="model")
    messages = params.pop("messages", None)
    stream = bool(params.pop("stream", False))
    options = params.pop("stream_options", None) or {}
    if not isinstance(options, Mapping):
        raise InvalidRequestError("stream_options must be an object", param="stream_options")
    if stream and params.get("n", 1) != 1:
        raise InvalidRequestError("n other than 1 is not served with stream=True", param="n")
    kwargs: dict[str, Any] = {"messages": messages, "entry_defaults": False}
    for name in ("max_tokens", "temperature", "response_format"):
        if params.get(name) is not None:
            kwargs[name] = params.pop(name)
    if params.get("user") is not None:
        kwargs["user_id"] = params["user"]
    metadata = params.pop("metadata", None)
    if metadata is not None:
        kwargs["metadata"] = metadata
        params["extra_body"] = {**(params.get("extra_body") or {}), "metadata": metadata}
    params = forward_params(params, CHAT_PARAMS)
    _forward(params, headers, query)
    return ChatCall(model, stream, bool(options.get("include_usage")), {**params, **kwargs})


def _forward(params: dict[str, Any], headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    """The caller's own headers and query string, for the provider."""
    extra_headers = _forwarded_headers(headers)
    if extra_headers:
        params["extra_headers"] = {**extra_headers, **(params.get("extra_headers") or {})}
    if query:
        params["extra_query"] = dict(query)


def endpoint_body(
    body: object, headers: Mapping[str, str], query: Mapping[str, str]
) -> dict[str, Any]:
    """An ``/embeddings`` or ``/responses`` request body with the caller's headers and query
    added (as ``extra_headers``/``extra_query``). Raises: InvalidRequestError."""
    if not isinstance(body, Mapping):
        raise InvalidRequestError("the request body must be a JSON object", param="body")
    if not isinstance(body.get("model"), str):
        raise InvalidRequestError("model must be a string", param="model")
    params = dict(body)
    _forward(params, headers, query)
    return params


def resolve_model(
    registry: LLMRegistry, model: str, fallback: LLMEntry | None = None
) -> dict[str, Any] | LLMEntry:
    """What an OpenAI ``model`` argument selects. Raises: UnknownModelError.

    A tier or an entry name gives ``generate()`` keyword arguments. A model id that an active
    entry serves (``gpt-4o-mini`` or ``openai/gpt-4o-mini``) selects that entry. Any other model
    id that a configured provider offers (``openai/gpt-4o``, ``ft:gpt-4o-mini:...`` or
    ``gpt-4o``, which LiteLLM's model map places at OpenAI) gives an :class:`LLMEntry` for
    exactly that model, using only the key and endpoint of that provider's first active entry
    (no id: its usage records carry the model and ``llm_id=None``; LiteLLM's prices). Failing
    that, ``fallback`` (the caller's own ``base_url``/``api_key``) serves it. It is never
    swapped for another model.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError(
            "model must be a tier, an entry name or a model id", param="model"
        )
    if model.strip().lower() in TIERS:
        return {"tier": model.strip().lower()}
    active = registry.list_active()
    for entry in active:
        if entry.name == model:
            return {"llm_name": entry.name}
    for entry in active:
        if model in (entry.model_name, f"{entry.provider}/{entry.model_name}"):
            return {"llm_name": entry.name}
    provider, _, name = model.partition("/")
    if not name or not any(e.provider == provider for e in active):
        from creative_services import _litellm

        provider, name = _litellm.provider_of(model) or "", model
    for entry in active:
        if entry.provider == provider:
            # Only the provider's key and endpoint are borrowed: not the entry's id (the usage
            # record would point at another model's row), prices, tuning or extra parameters.
            return LLMEntry(
                name=f"{provider}/{name}",
                provider=provider,
                model_name=name,
                tier=entry.tier,
                api_key=entry.api_key,
                api_key_env=entry.api_key_env,
                api_endpoint=entry.api_endpoint,
            )
    if fallback is not None:
        return LLMEntry(
            name=f"{fallback.provider}/{model}",
            provider=fallback.provider,
            model_name=model,
            tier=fallback.tier,
            api_key=fallback.api_key,
            api_endpoint=fallback.api_endpoint,
        )
    raise UnknownModelError(
        f"no active registry entry serves model {model!r} and no configured provider offers "
        f"it: use a tier ({', '.join(sorted(TIERS))}), an entry name "
        f"({', '.join(repr(e.name) for e in active[:10]) or 'none'}), or add an entry "
        f"with model_name={model!r}",
        key=model,
    )


# --- answers ------------------------------------------------------------------------------------


def _dump(raw: Any) -> dict[str, Any] | None:
    dump = getattr(raw, "model_dump", None)
    if dump is None:
        return None
    body = dump()
    return body if isinstance(body, dict) else None


def _usage_body(response: LLMResponse) -> dict[str, Any]:
    usage = response.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _message(response: LLMResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for i, call in enumerate(response.tool_calls)
        ]
    return message


def completion_body(response: LLMResponse, model: str) -> dict[str, Any]:
    """The ``chat.completion`` JSON for ``response``: the provider's own answer (its ``id``,
    ``created``, ``system_fingerprint``, ``service_tier``, every choice with its ``logprobs``,
    usage details) when there is one, else (cache hits) one built from our response."""
    body = _dump(response.raw)
    if body is not None and body.get("choices"):
        body.pop("_hidden_params", None)
        body["model"] = response.model or body.get("model") or model
        for choice in body["choices"]:
            _clean_choice(choice)
        return body
    return {
        "id": f"chatcmpl-{response.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.model or response.entry.model,
        "choices": [
            {
                "index": 0,
                "message": _message(response),
                "finish_reason": response.finish_reason or "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage_body(response),
    }


def _clean_choice(choice: dict[str, Any]) -> None:
    """LiteLLM adds fields of its own (``provider_specific_fields``) and leaves ``None`` where
    OpenAI leaves a key out: drop them so the SDK sees OpenAI's shape."""
    choice.pop("provider_specific_fields", None)
    message = choice.get("message")
    if isinstance(message, dict):
        for key in ("provider_specific_fields", "function_call", "audio", "reasoning_content"):
            if message.get(key) is None:
                message.pop(key, None)
        if message.get("tool_calls") is None:
            message.pop("tool_calls", None)


def request_id(response: LLMResponse) -> str:
    """The provider's ``x-request-id`` when it sent one, else our call's request id."""
    hidden = getattr(response.raw, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {} if isinstance(hidden, Mapping) else {}
    for key in ("llm_provider-x-request-id", "x-request-id"):
        value = headers.get(key) if isinstance(headers, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return response.request_id


class ChunkEncoder:
    """Our stream's text deltas and final response as OpenAI SSE ``data:`` frames."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = f"chatcmpl-{os.urandom(12).hex()}"
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.first = True

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                 "model": self.model, "choices": choices, **extra}  # fmt: skip
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    def _opening(self) -> bytes:
        """OpenAI opens with a frame that only names the role (and an empty content)."""
        if not self.first:
            return b""
        self.first = False
        delta = {"role": "assistant", "content": ""}
        return self._frame([{"index": 0, "delta": delta, "finish_reason": None}])

    def text(self, text: str) -> bytes:
        opening = self._opening()
        delta = {"content": text}
        return opening + self._frame([{"index": 0, "delta": delta, "finish_reason": None}])

    def last(self, response: LLMResponse) -> bytes:
        """The closing frames: tool calls (whole), the finish reason, the usage, ``[DONE]``."""
        frames = self._opening()
        self.model = response.model or self.model
        delta: dict[str, Any] = {}
        calls = _message(response).get("tool_calls")
        if calls:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
        finish = response.finish_reason or ("tool_calls" if calls else "stop")
        frames += self._frame([{"index": 0, "delta": delta, "finish_reason": finish}])
        if self.include_usage:
            frames += self._frame([], usage=_usage_body(response))
        return frames + b"data: [DONE]\n\n"

    def error(self, exc: BaseException) -> bytes:
        """A failure midway: the SDK raises ``APIError`` from an ``error`` event."""
        answer = error_answer(exc)
        return b"data: " + json.dumps(answer.body).encode() + b"\n\n"


# --- errors -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireError:
    """An error as HTTP: ``status`` 0 means no HTTP answer (``kind``: "timeout"/"connection")."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    kind: str = "status"


_STATUS: tuple[tuple[type[CreativeServicesError], int, str, str | None], ...] = (
    (ContextWindowExceededError, 400, "invalid_request_error", "context_length_exceeded"),
    (ContentPolicyError, 400, "invalid_request_error", "content_policy_violation"),
    (StructuredOutputError, 422, "invalid_response_error", "structured_output_invalid"),
    (BadRequestError, 400, "invalid_request_error", None),
    (InvalidRequestError, 400, "invalid_request_error", None),
    (MissingAPIKeyError, 401, "invalid_request_error", "missing_api_key"),
    (AuthenticationError, 401, "invalid_request_error", "invalid_api_key"),
    (PermissionDeniedError, 403, "permission_error", None),
    (UnknownModelError, 404, "invalid_request_error", "model_not_found"),
    (NoActiveEntryError, 404, "invalid_request_error", "model_not_found"),
    (ModelNotFoundError, 404, "invalid_request_error", "model_not_found"),
    (BudgetExceededError, 429, "insufficient_quota", "budget_exceeded"),
    (QuotaExceededError, 429, "insufficient_quota", "insufficient_quota"),
    (RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded"),
    (MalformedResponseError, 502, "server_error", "malformed_response"),  # a bad upstream answer
    (ConfigurationError, 500, "server_error", "configuration_error"),
)


def error_answer(exc: BaseException) -> WireError:
    """The OpenAI error answer for ``exc`` (the last failure of an AllModelsFailedError)."""
    cause = exc.failures[-1] if isinstance(exc, AllModelsFailedError) and exc.failures else exc
    message = str(exc)
    if isinstance(cause, LLMTimeoutError):
        body = _error_body(message, "timeout", cause.code, None)  # stream_idle_timeout ...
        return WireError(0, {}, body, kind="timeout")
    if isinstance(cause, APIConnectionError):
        return WireError(0, {}, _error_body(message, "connection", None, None), "connection")
    status, kind, code = 500, "server_error", None
    for cls, cls_status, cls_kind, cls_code in _STATUS:
        if isinstance(cause, cls):
            status, kind, code = cls_status, cls_kind, cls_code
            break
    else:
        if isinstance(cause, LLMError) and cause.status_code and cause.status_code >= 400:
            status = cause.status_code
    if isinstance(cause, LLMError) and cause.code:
        code = cause.code
    headers = {"x-should-retry": "false"}  # one retry layer only: ours
    if isinstance(cause, LLMError) and cause.retry_after is not None:
        headers["retry-after"] = f"{cause.retry_after:g}"
    param = getattr(cause, "param", None)
    return WireError(status, headers, _error_body(message, kind, code, param))


def _error_body(message: str, kind: str, code: str | None, param: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def not_served(
    method: str,
    path: str,
    what: str = "",
    *,
    by: str = "creative_services.openai_compat",
    instead: str = "use the openai SDK's own client for it",
) -> WireError:
    """What an endpoint the drop-in (or the gateway, ``by``) does not serve answers: the SDK's
    NotFoundError."""
    message = (
        f"{method} {path}{what} is not served by {by} (it serves chat.completions, "
        f"embeddings.create, responses.create without stream and models.list); {instead}"
    )
    return WireError(
        404,
        {"x-should-retry": "false"},
        _error_body(message, "invalid_request_error", "not_served", None),
    )


def models_body(registry: LLMRegistry) -> dict[str, Any]:
    """``models.list()``: the tiers, then every active entry by name and by model id."""
    created = 0
    data = [{"id": tier, "object": "model", "created": created, "owned_by": "creative-services"}
            for tier in sorted(TIERS)]  # fmt: skip
    seen = set(TIERS)
    for entry in registry.list_active():
        for model_id in (entry.name, entry.model_name):
            if model_id not in seen:
                seen.add(model_id)
                data.append(
                    {"id": model_id, "object": "model", "created": created,
                     "owned_by": entry.provider}
                )  # fmt: skip
    return {"object": "list", "data": data}
