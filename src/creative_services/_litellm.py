"""The only module that imports LiteLLM: lazy import, entry -> kwargs, response and error mapping.

Facts about LiteLLM 1.110.2 this module works around (see docs/failure-handling.rst):

* Retry headers live in ``exc.litellm_response_headers`` (httpx.Headers or a plain dict), not in
  ``exc.response`` (a placeholder for most providers).
* Anthropic's 529 arrives as InternalServerError 500 (``provider_status_code`` keeps 529);
  Gemini's statuses are in the JSON error body (``"code": 503``), not in the class.
* Connection refused and a vcr cassette miss arrive as InternalServerError 500; the real cause is
  in ``__cause__``.
* ``completion_tokens`` includes reasoning tokens (Gemini thinking, OpenAI o-series): we split them.
* ``ollama_chat/`` reports the model as ``ollama_chat/<m>``: we strip the route prefix.
* The groq/ route crashes on answers without ``service_tier``: Groq is routed through openai/
  (see ``_providers.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from creative_services import _sync
from creative_services._log import get_logger
from creative_services._providers import litellm_route, provider_spec
from creative_services._secrets import redact
from creative_services.budgets import MAX_AMOUNT
from creative_services.exceptions import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    MalformedResponseError,
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from creative_services.pricing import TokenPrices
from creative_services.retry import parse_retry_after
from creative_services.types import LLMEntry, ToolCall, Usage

__all__ = [
    "OpenedStream",
    "ProviderResult",
    "StreamAccumulator",
    "call_endpoint",
    "close_stream",
    "complete",
    "endpoint_kwargs",
    "estimate_tokens",
    "load",
    "map_prices",
    "next_chunk",
    "open_stream",
    "provider_of",
    "provider_usage",
    "stream_kwargs",
    "translate_error",
]

_litellm: Any = None
_load_lock = threading.Lock()


def needs_load() -> bool:
    """True until LiteLLM has been imported."""
    return _litellm is None


def load() -> Any:
    """Import LiteLLM once, offline, quiet, with nothing of its own retrying or logging."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _load_lock:
        if _litellm is not None:
            return _litellm
        # Without this LiteLLM fetches its price map from the network at import.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True  # it prints "Give Feedback / Get Help" to stdout
        litellm.telemetry = False
        litellm.num_retries = 0
        # We price every call ourselves (pricing.py) and take a provider-reported cost only from
        # the provider's own usage, never from LiteLLM's price-map bill. So LiteLLM's per-call
        # cost calculation (about 15 % of its CPU per call, bench/RESULTS.md) is skipped for our
        # calls, which carry a litellm_call_id with our prefix (build_kwargs); any other LiteLLM
        # user in the process keeps its costs. LiteLLM calls it through this module attribute.
        calculate = litellm.response_cost_calculator

        def response_cost_calculator(**kwargs: Any) -> Any:
            call_id = getattr(kwargs.get("litellm_logging_obj"), "litellm_call_id", None)
            if isinstance(call_id, str) and call_id.startswith("creative-services-"):
                return None  # LiteLLM's "cost unknown": no bill stamped on usage, no warning
            return calculate(**kwargs)

        litellm.response_cost_calculator = response_cost_calculator
        _litellm = litellm
        # Registered after LiteLLM's own atexit handlers, so it runs before them (LIFO).
        _sync.add_shutdown_hook(_close_clients)
        _sync.add_fork_hook(_forget_clients)
    return _litellm


async def _close_clients() -> None:
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

    await GLOBAL_LOGGING_WORKER.stop(discard_pending=True, timeout=2.0)
    await close_litellm_async_clients()  # type: ignore[no-untyped-call]


def _forget_clients() -> None:
    # In a forked child the cached clients belong to the parent's loop and sockets.
    _litellm.in_memory_llm_clients_cache.flush_cache()
    _query_clients.clear()


_query_clients: dict[tuple[str | None, str | None, tuple[tuple[str, str], ...]], Any] = {}
_QUERY_CLIENTS_MAX = 64
_QUERY_ROUTES = ("openai/",)
"""LiteLLM routes that call through the openai SDK, whose client can carry a query string."""


def _openai_client(api_base: str | None, api_key: str | None, query: Mapping[str, Any]) -> Any:
    """A cached openai SDK client for LiteLLM's ``client=``: no retries of its own, the
    caller's query string on every request (one client per endpoint, key and query)."""
    pairs = tuple(sorted((str(k), str(v)) for k, v in query.items()))
    key = (api_base, api_key, pairs)
    client = _query_clients.get(key)
    if client is None:
        if len(_query_clients) >= _QUERY_CLIENTS_MAX:
            _query_clients.pop(next(iter(_query_clients)))
        client = _no_retries_class()(
            api_key=api_key or "not-needed", base_url=api_base, default_query=dict(pairs) or None,
            max_retries=0,
        )  # fmt: skip
        _query_clients[key] = client
    return client


@lru_cache(maxsize=1)
def _no_retries_class() -> Any:
    """An ``openai.AsyncOpenAI`` whose ``max_retries`` stays 0: LiteLLM's embedding sets the
    client's ``max_retries`` to 2 when asked for 0 (``max_retries or DEFAULT_MAX_RETRIES``)."""
    import openai

    class NoRetries(openai.AsyncOpenAI):
        @property
        def max_retries(self) -> int:
            return 0

        @max_retries.setter
        def max_retries(self, value: int) -> None:
            del value  # one retry layer only: ours

    return NoRetries


def _with_query(kwargs: dict[str, Any], entry: LLMEntry) -> dict[str, Any]:
    """``extra_query`` as the URL query: LiteLLM would put it in the JSON body. On the routes
    that go through the openai SDK it becomes the SDK client's ``default_query``; elsewhere it
    is refused. Raises: InvalidRequestError."""
    query = kwargs.get("extra_query")
    if query is None:
        return kwargs
    kwargs = dict(kwargs)
    del kwargs["extra_query"]
    if not isinstance(query, Mapping):
        raise InvalidRequestError("extra_query must be an object", param="extra_query")
    if not query:
        return kwargs
    if not str(kwargs["model"]).startswith(_QUERY_ROUTES) or "client" in kwargs:
        raise InvalidRequestError(
            f"extra_query reaches only OpenAI-compatible entries; {entry.name!r} "
            f"({entry.provider}) has no URL query: send it in extra_body or extra_headers",
            param="extra_query",
        )
    kwargs["client"] = _openai_client(kwargs.get("api_base"), kwargs.get("api_key"), query)
    return kwargs


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """What one successful provider call returned, in our terms."""

    content: str | None
    model: str | None
    finish_reason: str | None
    usage: Usage
    provider_cost: Decimal | None
    tool_calls: tuple[ToolCall, ...]
    raw: Any = None
    """The provider's answer object (non-streamed calls)."""


def build_kwargs(
    entry: LLMEntry,
    api_key: str | None,
    messages: Sequence[Mapping[str, Any]],
    *,
    max_tokens: int | None,
    temperature: float | None,
    timeout: float,
    params: Mapping[str, Any],
    entry_defaults: bool = True,
) -> dict[str, Any]:
    """The ``litellm.acompletion`` keyword arguments for one attempt on ``entry``.

    ``max_tokens``/``temperature`` given by the caller are sent as they are; the entry's
    defaults fill in the others (``entry_defaults``), adapted to what the model accepts.
    """
    model, api_base = litellm_route(entry.provider, entry.model_name, entry.api_endpoint)
    spec = provider_spec(entry.provider)
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        # One retry layer only: ours (retry.py).
        "num_retries": 0,
        "max_retries": 0,
        # Marks the call as ours for load()'s cost-calculator hook (LiteLLM makes a uuid4 else).
        "litellm_call_id": "creative-services-" + os.urandom(16).hex(),
    }
    if entry_defaults:
        explicit = set(params)
        if max_tokens is not None or explicit & set(_MAX_TOKEN_NAMES):
            explicit.update(_MAX_TOKEN_NAMES)
        if temperature is not None:
            explicit.add("temperature")
        defaults = accepted_defaults(model, entry.max_tokens, entry.temperature)
        kwargs.update((k, v) for k, v in defaults.items() if k not in explicit)
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if temperature is not None:
        kwargs["temperature"] = temperature
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    elif spec is not None and spec.name == "openai_compatible":
        kwargs["api_key"] = "not-needed"  # the OpenAI client refuses an empty key
    kwargs.update(entry.extra_params)
    kwargs.update(params)
    return kwargs


_MAX_TOKEN_NAMES = ("max_tokens", "max_completion_tokens")


def accepted_defaults(model: str, max_tokens: int, temperature: float) -> dict[str, Any]:
    """An entry's defaults as ``model`` accepts them (``model`` is LiteLLM's route).

    LiteLLM's own parameter mapping decides: reasoning models (o-series, gpt-5) take no
    temperature and want ``max_completion_tokens``; what a model refuses is dropped and logged
    at debug. A caller's explicit values never pass through here.
    """
    kept = dict(_accepted_names(model))
    result: dict[str, Any] = {}
    if kept["temperature"]:
        result["temperature"] = temperature
    if kept["max_tokens"]:
        result[kept["max_tokens"]] = max_tokens
    dropped = [n for n in ("temperature", "max_tokens") if not kept[n]]
    if dropped or kept["max_tokens"] not in ("max_tokens", None):
        from creative_services._log import debug_enabled, get_logger

        if debug_enabled():
            get_logger().debug(
                "entry_defaults_adapted", model=model, dropped=dropped, sent=sorted(result)
            )
    return result


@lru_cache(maxsize=512)
def _accepted_names(model: str) -> tuple[tuple[str, Any], ...]:
    """Which default names ``model`` takes: temperature (bool) and its max-tokens name."""
    litellm = load()
    try:
        name, provider, _, _ = litellm.get_llm_provider(model)
        config = litellm.utils.ProviderConfigManager.get_provider_chat_config(
            model=name, provider=litellm.types.utils.LlmProviders(provider)
        )
        mapped = config.map_openai_params(
            non_default_params={"temperature": 0.7, "max_tokens": 4096},
            optional_params={},
            model=name,
            drop_params=True,
        )
    except Exception:  # no mapping known: send the defaults as they are
        return (("temperature", True), ("max_tokens", "max_tokens"))
    translated = any("token" in k for k in mapped if k not in _MAX_TOKEN_NAMES)
    tokens = next((n for n in _MAX_TOKEN_NAMES if n in mapped), None)
    if tokens is None and translated:
        tokens = "max_tokens"  # the provider has its own name: LiteLLM maps max_tokens to it
    return (("temperature", "temperature" in mapped), ("max_tokens", tokens))


async def complete(
    kwargs: dict[str, Any], entry: LLMEntry, secrets: Sequence[str]
) -> ProviderResult:
    """One provider call. Raises: LLMError (translated; never a LiteLLM exception)."""
    litellm = load()
    sent = _with_query(kwargs, entry)
    try:
        response = await litellm.acompletion(**sent)
    except Exception as exc:
        raise translate_error(exc, entry, secrets) from scrub(exc, secrets)
    return _result(response, entry, kwargs)


def _malformed(entry: LLMEntry, why: str) -> MalformedResponseError:
    return MalformedResponseError(
        f"{entry.provider} 200: the answer is not a completion: {why}",
        model=entry.model_name,
        provider=entry.provider,
        status_code=200,
        entry=entry.ref,
    )


def _result(response: Any, entry: LLMEntry, kwargs: Mapping[str, Any]) -> ProviderResult:
    choices = getattr(response, "choices", None)
    if not choices:
        raise _malformed(entry, "it has no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise _malformed(entry, "its first choice has no message")
    content = message.content
    tool_calls = tuple(
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in (getattr(message, "tool_calls", None) or ())
    )
    raw_usage = getattr(response, "usage", None)
    return ProviderResult(
        content=content,
        model=_served_model(response.model, kwargs),
        finish_reason=choice.finish_reason,
        usage=_usage(raw_usage, kwargs, content),
        provider_cost=_provider_cost(raw_usage),
        tool_calls=tool_calls,
        raw=response,
    )


MAX_REPORTED_TOKENS = 100_000_000
"""More tokens than one call can use (the largest context windows hold 10 M): a count above it,
below 0 or not a whole number is not believed."""


def _count(value: object) -> int | None:
    """A provider's token count as an int, or None when it cannot be one."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    count = int(value)
    return count if 0 <= count <= MAX_REPORTED_TOKENS else None


def provider_counts(raw_usage: Any) -> dict[str, int] | None:
    """The provider's four token counts, or None when one of them is odd. Pure."""
    details = getattr(raw_usage, "completion_tokens_details", None)
    prompt_details = getattr(raw_usage, "prompt_tokens_details", None)
    raw = {
        "prompt_tokens": getattr(raw_usage, "prompt_tokens", 0),
        "completion_tokens": getattr(raw_usage, "completion_tokens", 0),
        "reasoning_tokens": getattr(details, "reasoning_tokens", 0),
        "cached_tokens": getattr(prompt_details, "cached_tokens", 0),
    }
    counts = {name: _count(value) for name, value in raw.items()}
    if any(value is None for value in counts.values()):
        return None
    return {name: int(value or 0) for name, value in counts.items()}


def _usage(raw_usage: Any, kwargs: Mapping[str, Any], content: str | None) -> Usage:
    """Our Usage from the provider's, or a local count flagged ``estimated`` when it sent none,
    or counts no call can have (negative, fractional, over :data:`MAX_REPORTED_TOKENS`)."""
    counts = None if raw_usage is None else provider_counts(raw_usage)
    if raw_usage is not None and counts is None:
        get_logger().warning(
            "provider_usage_odd",
            model=kwargs["model"],
            usage={
                n: repr(getattr(raw_usage, n, None))[:40]
                for n in ("prompt_tokens", "completion_tokens")
            },
        )
    if counts is None or (counts["prompt_tokens"] == 0 and counts["completion_tokens"] == 0):
        return Usage(
            prompt_tokens=estimate_tokens(kwargs["model"], messages=kwargs["messages"]),
            completion_tokens=estimate_tokens(kwargs["model"], text=content or ""),
            estimated=True,
        )
    reasoning = counts["reasoning_tokens"]
    return Usage(
        prompt_tokens=counts["prompt_tokens"],
        completion_tokens=max(0, counts["completion_tokens"] - reasoning),
        reasoning_tokens=reasoning,
        cached_tokens=counts["cached_tokens"],
    )


def _served_model(model: object, kwargs: Mapping[str, Any]) -> str | None:
    if not isinstance(model, str):
        return None
    route = kwargs["model"].split("/", 1)[0] + "/"
    return model[len(route) :] if model.startswith(route) else model


# --- streams ------------------------------------------------------------------------------------


def stream_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for a streamed call that also asks for the provider's usage.

    LiteLLM turns ``stream_options.include_usage`` into each provider's equivalent (Anthropic's
    message_delta usage, Gemini's usageMetadata) and returns it on a last, choice-less chunk.
    """
    options = dict(kwargs.get("stream_options") or {})
    options.setdefault("include_usage", True)
    return {**kwargs, "stream": True, "stream_options": options}


class StreamAccumulator:
    """Collects a streamed answer chunk by chunk: text, tool calls, finish reason, usage."""

    __slots__ = (
        "_kwargs",
        "_parts",
        "_tools",
        "extra_usage",
        "finish_reason",
        "model",
        "raw_usage",
    )

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self._kwargs = kwargs
        self._parts: list[str] = []
        self._tools: dict[int, ToolCall] = {}
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.raw_usage: Any = None
        self.extra_usage: Any = None
        """Usage the provider sent outside ``usage`` (Groq's ``x_groq.usage``): LiteLLM's
        openai route passes it through untouched and counts the tokens locally instead."""

    def feed(self, chunk: Any) -> str:
        """Take one LiteLLM chunk; return its text delta ("" when it has none)."""
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.raw_usage = usage
        extra = getattr(chunk, "x_groq", None)
        if isinstance(extra, Mapping) and isinstance(extra.get("usage"), Mapping):
            self.extra_usage = SimpleNamespace(**extra["usage"])
        if self.model is None:
            self.model = _served_model(getattr(chunk, "model", None), self._kwargs)
        choices = chunk.choices
        if not choices:
            return ""
        choice = choices[0]
        if choice.finish_reason:
            self.finish_reason = choice.finish_reason
        delta = choice.delta
        calls = getattr(delta, "tool_calls", None)
        if calls:
            for call in calls:
                slot = self._tools.setdefault(
                    call.index or 0, ToolCall(id=None, name="", arguments="")
                )
                slot["id"] = slot["id"] or call.id
                function = call.function
                slot["name"] += function.name or ""
                slot["arguments"] += function.arguments or ""
        text = delta.content
        if text:
            self._parts.append(text)
            return str(text)
        return ""

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self, provider_usage: Any) -> ProviderResult:
        """The answer so far; with ``provider_usage`` None, tokens are counted locally (and
        flagged estimated)."""
        text = self.text
        content = text if text or not self._tools else None
        raw_usage = self.raw_usage if provider_usage is not None else self.extra_usage
        return ProviderResult(
            content=content,
            model=self.model,
            finish_reason=self.finish_reason,
            usage=_usage(raw_usage, self._kwargs, text),
            provider_cost=_provider_cost(provider_usage),
            tool_calls=tuple(self._tools[i] for i in sorted(self._tools)),
        )


def provider_usage(stream: Any) -> Any:
    """The last usage the provider itself sent in ``stream``, or None.

    LiteLLM fills in a local token count on the last chunk when the provider sent none, and
    stamps its own price-map bill on it as ``usage.cost``: we flag the first as estimated and
    take a cost as provider-reported only from the provider's own chunks.
    """
    chunks = getattr(stream, "chunks", None)
    if not isinstance(chunks, list):
        return None
    for chunk in reversed(chunks):
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            return usage
    return None


@dataclass(frozen=True, slots=True)
class OpenedStream:
    """A stream whose first output (text, a tool call or a finish reason) has arrived."""

    stream: Any
    chunks: list[Any]
    """Every chunk read so far, the first output last (the role-only opening chunk before it)."""
    exhausted: bool


def _has_output(chunk: Any) -> bool:
    choices = getattr(chunk, "choices", None)
    if not choices:
        return False
    choice = choices[0]
    delta = getattr(choice, "delta", None)
    return bool(
        getattr(delta, "content", None)
        or getattr(delta, "tool_calls", None)
        or getattr(choice, "finish_reason", None)
    )


async def open_stream(
    kwargs: dict[str, Any], entry: LLMEntry, secrets: Sequence[str]
) -> OpenedStream:
    """Start a streamed call and read until its first output, so that every failure a retry or
    a fallback can still fix (nothing has reached the caller) happens here. OpenAI-style
    streams open with a chunk that only names the role: that one does not count.

    Raises: LLMError (translated).
    """
    litellm = load()
    sent = _with_query(kwargs, entry)
    try:
        stream = await litellm.acompletion(**sent)
    except Exception as exc:
        raise translate_error(exc, entry, secrets) from scrub(exc, secrets)
    chunks: list[Any] = []
    try:
        while True:
            chunk = await stream.__anext__()
            chunks.append(chunk)
            if _has_output(chunk):
                return OpenedStream(stream, chunks, exhausted=False)
    except StopAsyncIteration:
        return OpenedStream(stream, chunks, exhausted=True)
    except BaseException as exc:
        await close_stream(stream)
        if isinstance(exc, Exception):
            raise translate_error(exc, entry, secrets) from scrub(exc, secrets)
        raise


async def next_chunk(stream: Any, entry: LLMEntry, secrets: Sequence[str]) -> Any:
    """The next chunk, or None at the end. Raises: LLMError (translated)."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
    except Exception as exc:
        raise translate_error(exc, entry, secrets) from scrub(exc, secrets)


async def close_stream(stream: Any) -> None:
    """Close the HTTP response under ``stream`` (stops the provider generating, where it can)."""
    with contextlib.suppress(Exception):
        await stream.aclose()


# --- other endpoints: embeddings, the Responses API --------------------------------------------

_ENDPOINT_FUNCTIONS = {"embeddings": "aembedding", "responses": "aresponses"}


def endpoint_kwargs(
    entry: LLMEntry, api_key: str | None, params: Mapping[str, Any], *, timeout: float
) -> dict[str, Any]:
    """The ``litellm.aembedding`` / ``litellm.aresponses`` keyword arguments for ``entry``:
    its route, endpoint and key, and the caller's parameters as they are (no entry defaults,
    no entry ``extra_params``: those are chat parameters)."""
    model, api_base = litellm_route(entry.provider, entry.model_name, entry.api_endpoint)
    kwargs: dict[str, Any] = {"model": model, "num_retries": 0, "max_retries": 0}
    if api_base:
        kwargs["api_base"] = api_base
    spec = provider_spec(entry.provider)
    if api_key:
        kwargs["api_key"] = api_key
    elif spec is not None and spec.name == "openai_compatible":
        kwargs["api_key"] = "not-needed"
    kwargs.update(params)
    kwargs["timeout"] = timeout
    return kwargs


async def call_endpoint(
    endpoint: str, kwargs: dict[str, Any], entry: LLMEntry, secrets: Sequence[str]
) -> dict[str, Any]:
    """One embeddings or Responses API call; the answer as OpenAI's JSON object.

    Raises: LLMError (translated), InvalidRequestError (``extra_query`` where none can go).
    """
    litellm = load()
    if endpoint == "responses":
        if kwargs.get("extra_query"):
            raise InvalidRequestError(
                "extra_query is not sent with responses.create (LiteLLM drops it): "
                "send it in extra_body or extra_headers",
                param="extra_query",
            )
        sent = kwargs
    else:
        sent = _embedding_kwargs(kwargs, entry)
    try:
        response = await getattr(litellm, _ENDPOINT_FUNCTIONS[endpoint])(**sent)
    except Exception as exc:
        raise translate_error(exc, entry, secrets) from scrub(exc, secrets)
    body = response.model_dump(mode="json", warnings=False)
    if not isinstance(body, dict):
        return {}
    if endpoint == "embeddings" and kwargs.get("encoding_format") == "base64":
        _to_base64(body)
    else:
        body["id"] = _provider_response_id(body.get("id"))
    return body


def _embedding_kwargs(kwargs: dict[str, Any], entry: LLMEntry) -> dict[str, Any]:
    """LiteLLM 1.110.2's OpenAI embedding retries twice whatever ``max_retries`` says (unless
    ``encoding_format`` is set and its client has none) and warns (an error under ``-W error``)
    on a base64 answer: on the openai route it gets an SDK client without retries and
    ``encoding_format="float"`` (base64 is encoded back by :func:`_to_base64`)."""
    sent = _with_query(kwargs, entry)
    if str(sent["model"]).startswith(_QUERY_ROUTES):
        sent = {**sent, "encoding_format": "float"}
        if "client" not in sent:
            sent["client"] = _openai_client(sent.get("api_base"), sent.get("api_key"), {})
    return sent


def _to_base64(body: dict[str, Any]) -> None:
    """Float vectors as OpenAI's base64 (little-endian float32), as the caller asked."""
    import base64
    import struct

    for item in body.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            packed = struct.pack(f"<{len(vector)}f", *vector)
            item["embedding"] = base64.b64encode(packed).decode()


def _provider_response_id(response_id: object) -> object:
    """The provider's own response id (LiteLLM wraps it in an id of its own)."""
    if not isinstance(response_id, str):
        return response_id
    try:
        from litellm.responses.utils import ResponsesAPIRequestUtils as Utils

        return Utils.decode_previous_response_id_to_original_previous_response_id(response_id)
    except Exception:
        return response_id


_TOKENIZER_MODEL = "gpt-4o"


def estimate_tokens(
    model: str, *, messages: Sequence[Mapping[str, Any]] | None = None, text: str = ""
) -> int:
    """Count tokens locally, for responses that report no usage (flagged ``estimated``).

    Always with OpenAI's o200k tokenizer, which LiteLLM ships: for Llama, Mistral or Cohere
    models LiteLLM would fetch a Hugging Face tokenizer over the network (offline, 24 s of
    retries on the event loop before it gave up).
    """
    del model  # the count is an estimate for every model alike
    litellm = load()
    try:
        if messages is not None:
            return int(litellm.token_counter(model=_TOKENIZER_MODEL, messages=list(messages)))
        return int(litellm.token_counter(model=_TOKENIZER_MODEL, text=text)) if text else 0
    except Exception:
        return max(1, len(text) // 4) if text else 0


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        return None
    return result if result.is_finite() and result >= 0 else None


def _provider_cost(raw_usage: Any) -> Decimal | None:
    """The bill the provider put on its usage (OpenRouter's ``usage.cost``), or None: absent,
    negative or over :data:`~creative_services.budgets.MAX_AMOUNT` (then priced from tokens)."""
    value = getattr(raw_usage, "cost", None)
    cost = _decimal(value)
    if cost is not None and cost <= MAX_AMOUNT:
        return cost
    if value is not None:
        get_logger().warning("provider_cost_odd", cost=repr(value)[:40])
    return None


def provider_of(model: str) -> str | None:
    """The provider LiteLLM's model map places a bare model id at (``gpt-4o`` -> ``openai``);
    a fine-tuned id (``ft:gpt-4o-mini:org::id``) is at its base model's provider."""
    if model.startswith("ft:"):
        model = model.split(":", 2)[1]
    info = load().model_cost.get(model)
    provider = info.get("litellm_provider") if isinstance(info, Mapping) else None
    return str(provider) if provider else None


@lru_cache(maxsize=2048)
def map_prices(provider: str, model_name: str) -> TokenPrices | None:
    """Per-token prices from LiteLLM's bundled (offline) map, or None when it has none."""
    spec = provider_spec(provider)
    allowed = spec.priced_by if spec is not None else (provider,)
    if not allowed:
        return None
    model_cost: Mapping[str, Mapping[str, Any]] = load().model_cost
    keys = [f"{p}/{model_name}" for p in allowed] + [model_name]
    for key in keys:
        info = model_cost.get(key)
        if not info or info.get("litellm_provider") not in allowed:
            continue
        inp, out = (
            _decimal(info.get("input_cost_per_token")),
            _decimal(info.get("output_cost_per_token")),
        )
        if inp is None or out is None:
            continue
        return TokenPrices(inp, out, _decimal(info.get("cache_read_input_token_cost")))
    return None


# --- errors -------------------------------------------------------------------------------------

_JSON_START = re.compile(r"\{")
_CONNECTION_CAUSES = (
    "ClientConnectorError",
    "ClientConnectorDNSError",
    "ClientOSError",
    "ServerDisconnectedError",
    "ConnectError",
    "ConnectTimeout",
    "RemoteProtocolError",
    "ReadError",
    "CannotOverwriteExistingCassetteException",
)
# LiteLLM raises a bare APIError for some statuses (e.g. 403 from openai/): classify by status.
_BY_STATUS: dict[int | None, type[LLMError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    408: LLMTimeoutError,
    422: BadRequestError,
}
_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})
_CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_QUOTA_MARKERS = ("insufficient_quota", "billing_hard_limit", "request too large")


def _headers(exc: BaseException) -> dict[str, str]:
    raw = getattr(exc, "litellm_response_headers", None)
    if raw is None:
        response = getattr(exc, "response", None)
        raw = getattr(response, "headers", None)
    try:
        return {str(k).lower(): str(v) for k, v in dict(raw or {}).items()}
    except (TypeError, ValueError):
        return {}


def _error_body(text: str) -> dict[str, Any]:
    """The provider's JSON error object embedded in LiteLLM's message, if any."""
    decoder = json.JSONDecoder()
    for match in _JSON_START.finditer(text):
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(obj, dict):
            inner = obj.get("error", obj)
            return inner if isinstance(inner, dict) else {"message": str(inner)}
    return {}


def _gemini_retry_delay(body: Mapping[str, Any]) -> float | None:
    for detail in body.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_connection_failure(exc: BaseException) -> bool:
    return any(
        type(e).__name__ in _CONNECTION_CAUSES or isinstance(e, ConnectionError | TimeoutError)
        for e in _chain(exc)
    )


_MALFORMED_MARKERS = (
    "empty or invalid response from llm endpoint",
    "provider returned a response with no 'choices'",
    "invalid response object",
)


def _is_malformed_answer(exc: BaseException, text: str) -> bool:
    """Whether LiteLLM failed to read a success answer (invalid JSON, HTML, ``{}``, ``null``).

    The openai-SDK routes raise that as an internal 500 in LiteLLM's own words or from a
    JSONDecodeError; LiteLLM's own handlers (Anthropic, ...) as an APIConnectionError from the
    KeyError or TypeError they hit while indexing the body.
    """
    litellm = load()
    if not isinstance(
        exc, litellm.InternalServerError | litellm.APIError | litellm.APIConnectionError
    ):
        return False
    if any(marker in text.lower() for marker in _MALFORMED_MARKERS):
        return True
    causes = _chain(exc)[1:]
    if any(isinstance(cause, json.JSONDecodeError) for cause in causes):
        return True
    return (
        isinstance(exc, litellm.APIConnectionError)
        and bool(causes)
        and isinstance(causes[-1], KeyError | TypeError | IndexError | AttributeError)
    )


def translate_error(exc: BaseException, entry: LLMEntry, secrets: Sequence[str]) -> LLMError:
    """Turn any LiteLLM/SDK/transport exception into our typed error, without secrets."""
    litellm = load()
    original = getattr(exc, "original_exception", None)
    if type(exc).__name__ == "MidStreamFallbackError" and isinstance(original, BaseException):
        exc = original  # Gemini stream errors arrive wrapped, and not as RateLimitError
    text = str(getattr(exc, "message", None) or exc)
    raw_body = getattr(exc, "body", None)
    if isinstance(raw_body, dict):
        inner = raw_body.get("error", raw_body)
        body = inner if isinstance(inner, dict) else _error_body(text)
    else:
        body = _error_body(text)
    headers = _headers(exc)
    status = getattr(exc, "provider_status_code", None)
    if not isinstance(status, int) and isinstance(body.get("code"), int):
        status = body["code"]
    if not isinstance(status, int):
        status = getattr(exc, "status_code", None)
    body_code = body.get("code") if isinstance(body.get("code"), str) else body.get("type")
    code = str(body_code) if body_code else None
    message = str(body.get("message") or text)
    message = re.sub(r"^(litellm\.\w+:\s*)+", "", message).strip()
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = _gemini_retry_delay(body)
    should = headers.get("x-should-retry")
    fields: dict[str, Any] = {
        "model": entry.model_name,
        "provider": entry.provider,
        "status_code": status if isinstance(status, int) else None,
        "retry_after": retry_after,
        "should_retry": None if should is None else should.strip().lower() == "true",
        "code": code,
        "entry": entry.ref,
        "request_id": headers.get("x-request-id") or headers.get("request-id"),
    }
    lowered = f"{code or ''} {message}".lower()

    cls: type[LLMError]
    if isinstance(exc, litellm.ContextWindowExceededError):
        cls = ContextWindowExceededError
    elif isinstance(exc, litellm.ContentPolicyViolationError):
        cls = ContentPolicyError
    elif isinstance(exc, litellm.Timeout):
        cls = LLMTimeoutError
    elif _is_connection_failure(exc):
        # Before the status checks: LiteLLM guesses a class from the message text, so a
        # refused connection can arrive as a 500, or even a 429.
        cls = APIConnectionError
        fields["status_code"] = None
        message = f"could not reach {entry.provider}: {type(_chain(exc)[-1]).__name__}: {message}"
    elif _is_malformed_answer(exc, text):
        # LiteLLM reports a 2xx body it cannot parse as a 500: the provider did answer.
        cls = MalformedResponseError
        fields["status_code"] = 200
        detail = re.sub(r"^(?:\w+: )?\w+Exception - ", "", message).splitlines()[0][:200]
        message = f"the answer is not a completion: {detail}"
    elif isinstance(exc, litellm.RateLimitError) or fields["status_code"] == 429:
        quota = any(marker in lowered for marker in _QUOTA_MARKERS)
        cls = QuotaExceededError if quota else RateLimitError
    elif isinstance(exc, litellm.AuthenticationError):
        cls = AuthenticationError
    elif isinstance(exc, litellm.PermissionDeniedError):
        cls = PermissionDeniedError
    elif isinstance(exc, litellm.NotFoundError):
        cls = ModelNotFoundError
    elif isinstance(exc, litellm.BadRequestError | litellm.UnprocessableEntityError):
        # LiteLLM recognises these from the message text only for some routes: trust the code.
        if code in _CONTENT_POLICY_CODES:
            cls = ContentPolicyError
        elif code in _CONTEXT_WINDOW_CODES:
            cls = ContextWindowExceededError
        else:
            cls = BadRequestError
    else:
        cls = _BY_STATUS.get(fields["status_code"], LLMError)
        if (
            cls is LLMError
            and isinstance(fields["status_code"], int)
            and fields["status_code"] >= 500
        ):
            cls = ServiceUnavailableError
    prefix = f"{entry.provider} {fields['status_code']}: " if fields["status_code"] else ""
    return cls(redact(prefix + message, secrets), **fields)


def scrub(exc: BaseException, secrets: Sequence[str]) -> BaseException:
    """``exc`` and every exception it chains to, with secrets masked in what a traceback prints.

    Our error is chained to the provider's exception (``raise ... from exc``), and a provider that
    echoes the key (a 401, a ``?key=`` URL) puts it in that exception's message: masked in place.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        with contextlib.suppress(Exception):
            current.args = tuple(
                redact(a, secrets) if isinstance(a, str) else a for a in current.args
            )
        for name in ("message", "llm_provider_message"):
            value = getattr(current, name, None)
            if isinstance(value, str):
                with contextlib.suppress(Exception):
                    setattr(current, name, redact(value, secrets))
        current = current.__cause__ or current.__context__
    return exc
