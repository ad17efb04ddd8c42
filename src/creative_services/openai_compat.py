"""An OpenAI-shaped facade over :class:`DynamicLLMClient`, for code written against ``openai``.

Before::

    from openai import OpenAI
    client = OpenAI()
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])

After (only the import and the constructor change)::

    from creative_services.openai_compat import OpenAI
    client = OpenAI()                      # registry: Django when set up, else from the env
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    reply.choices[0].message.content, reply.usage.prompt_tokens

``model`` may be a tier (``"standard"``), a registry entry name, or a provider model string
(``"gpt-4o-mini"`` or ``"openai/gpt-4o-mini"``) that an active entry serves; anything else raises
:class:`~creative_services.exceptions.UnknownModelError` (never a silent substitute). Every call
goes through the registry, retries, fallbacks (for tiers), budgets and usage tracking, and
returns the ``openai`` package's own ``ChatCompletion`` type. Errors are this library's typed
errors.

``stream=True`` returns an iterator (``AsyncOpenAI``: an async iterator) of ``openai``'s
``ChatCompletionChunk`` as the text arrives, with ``close()`` and ``with`` like the SDK's
``Stream``; tool calls come whole in the last chunk, and ``stream_options={"include_usage":
True}`` adds the SDK's final usage chunk. Usage is recorded either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from creative_services.bridges import default_client
from creative_services.client import DynamicLLMClient
from creative_services.exceptions import InvalidRequestError, UnknownModelError
from creative_services.registry import LLMRegistry
from creative_services.streaming import LLMStream, SyncLLMStream
from creative_services.tracking import UsageTracker
from creative_services.types import LLMEntry, LLMResponse, LLMTier

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

__all__ = ["AsyncChunkStream", "AsyncOpenAI", "ChunkStream", "OpenAI", "resolve_model"]

_TIERS = {t.value for t in LLMTier}


def resolve_model(registry: LLMRegistry, model: str) -> dict[str, Any] | LLMEntry:
    """What an OpenAI ``model`` argument selects. Raises: UnknownModelError.

    A tier or an entry name gives ``generate()`` keyword arguments. A model id that an active
    entry serves (``gpt-4o-mini`` or ``openai/gpt-4o-mini``) selects that entry. Any other model
    id that a configured provider offers (``openai/gpt-4o``, or ``gpt-4o`` which LiteLLM's model
    map places at OpenAI) gives an :class:`LLMEntry` for exactly that model, using only the key
    and endpoint of that provider's first active entry (no id: its usage records carry the model
    and ``llm_id=None``; default tuning; LiteLLM's prices); it is never swapped for another
    model.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError(
            "model must be a tier, an entry name or a model id", param="model"
        )
    if model.strip().lower() in _TIERS:
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
    raise UnknownModelError(
        f"no active registry entry serves model {model!r} and no configured provider offers "
        f"it: use a tier ({', '.join(sorted(_TIERS))}), an entry name "
        f"({', '.join(repr(e.name) for e in active[:10]) or 'none'}), or add an entry "
        f"with model_name={model!r}",
        key=model,
    )


def _request(
    client: DynamicLLMClient,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    max_tokens: int | None,
    max_completion_tokens: int | None,
    user: str | None,
    kwargs: dict[str, Any],
) -> tuple[DynamicLLMClient, dict[str, Any]]:
    for name in ("n",):
        if kwargs.get(name, 1) != 1:
            raise InvalidRequestError(f"{name} other than 1 is not supported", param=name)
    kwargs.pop("n", None)
    selected = resolve_model(client.registry, model)
    if isinstance(selected, LLMEntry):
        client, selected = client.for_entry(selected), {"llm_name": selected.name}
    return client, {
        **selected,
        "messages": messages,
        "max_tokens": max_completion_tokens if max_completion_tokens is not None else max_tokens,
        "user_id": user,
        **kwargs,
    }


def _completion(response: LLMResponse) -> ChatCompletion:
    """The ``openai`` package's ``ChatCompletion`` for our response."""
    from openai.types.chat import ChatCompletion

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
    usage = response.usage
    return ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-{response.request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": response.model or response.entry.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": response.finish_reason or "stop"}
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
                "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            },
        }
    )


def _chunk(
    chunk_id: str, created: int, model: str, delta: dict[str, Any], **extra: Any
) -> ChatCompletionChunk:
    from openai.types.chat import ChatCompletionChunk

    finish = extra.pop("finish_reason", None)
    return ChatCompletionChunk.model_validate(
        {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


class _ChunkMaker:
    """Turns text deltas and the final response into ``ChatCompletionChunk`` objects."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = f"chatcmpl-{os.urandom(12).hex()}"
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.first = True

    def text(self, text: str) -> ChatCompletionChunk:
        delta: dict[str, Any] = {"content": text}
        if self.first:
            delta["role"], self.first = "assistant", False
        return _chunk(self.id, self.created, self.model, delta)

    def last(self, response: LLMResponse) -> list[ChatCompletionChunk]:
        completion = _completion(response)
        message = completion.choices[0].message
        delta: dict[str, Any] = {"role": "assistant"} if self.first else {}
        if message.tool_calls:
            delta["tool_calls"] = [
                {"index": i, **call.model_dump()} for i, call in enumerate(message.tool_calls)
            ]
        model = response.model or self.model
        chunks = [
            _chunk(
                self.id, self.created, model, delta, finish_reason=response.finish_reason or "stop"
            )
        ]
        if self.include_usage:
            usage = completion.usage
            assert usage is not None  # _completion always sets it
            chunks.append(
                _chunk(self.id, self.created, model, {}, usage=usage.model_dump()).model_copy(
                    update={"choices": []}
                )
            )
        return chunks


class ChunkStream:
    """What ``create(stream=True)`` returns: an iterator of ``ChatCompletionChunk``."""

    def __init__(self, stream: SyncLLMStream, maker: _ChunkMaker) -> None:
        self._stream = stream
        self._maker = maker
        self._chunks = self._generate()

    def _generate(self) -> Iterator[ChatCompletionChunk]:
        for text in self._stream:
            yield self._maker.text(text)
        yield from self._maker.last(self._stream.response)

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        return next(self._chunks)

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the provider call (the usage of what arrived is still recorded)."""
        self._stream.close()

    @property
    def response(self) -> LLMResponse:
        """This library's whole :class:`LLMResponse`, once the stream is read."""
        return self._stream.response


class AsyncChunkStream:
    """What the async ``create(stream=True)`` returns: an async iterator of chunks."""

    def __init__(self, stream: LLMStream, maker: _ChunkMaker) -> None:
        self._stream = stream
        self._maker = maker
        self._pending: list[ChatCompletionChunk] = []
        self._done = False

    def __aiter__(self) -> AsyncChunkStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._pending:
            return self._pending.pop(0)
        if self._done:
            raise StopAsyncIteration
        try:
            return self._maker.text(await self._stream.__anext__())
        except StopAsyncIteration:
            self._done = True
            self._pending = self._maker.last(self._stream.response)
            return self._pending.pop(0)

    async def __aenter__(self) -> AsyncChunkStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the provider call (the usage of what arrived is still recorded)."""
        await self._stream.aclose()

    @property
    def response(self) -> LLMResponse:
        """This library's whole :class:`LLMResponse`, once the stream is read."""
        return self._stream.response


def _wants_usage(kwargs: dict[str, Any]) -> bool:
    options = kwargs.pop("stream_options", None) or {}
    if not isinstance(options, Mapping):
        raise InvalidRequestError("stream_options must be a dict", param="stream_options")
    return bool(options.get("include_usage"))


class _Completions:
    def __init__(self, client: DynamicLLMClient) -> None:
        self._client = client

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[False] = False,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[True],
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> ChunkStream: ...

    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: bool = False,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> ChatCompletion | ChunkStream:
        """Like ``openai``'s ``chat.completions.create``: a ``ChatCompletion``, or with
        ``stream=True`` an iterator of ``ChatCompletionChunk``."""
        include_usage = _wants_usage(kwargs)
        client, request = _request(
            self._client, model, list(messages), max_tokens, max_completion_tokens, user, kwargs
        )
        if stream:
            return ChunkStream(client.stream_sync(**request), _ChunkMaker(model, include_usage))
        return _completion(client.generate_sync(**request))


class _AsyncCompletions:
    def __init__(self, client: DynamicLLMClient) -> None:
        self._client = client

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[False] = False,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[True],
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> AsyncChunkStream: ...

    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: bool = False,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> ChatCompletion | AsyncChunkStream:
        """Like ``openai``'s async ``chat.completions.create``: a ``ChatCompletion``, or with
        ``stream=True`` an async iterator of ``ChatCompletionChunk``."""
        include_usage = _wants_usage(kwargs)
        client, request = _request(
            self._client, model, list(messages), max_tokens, max_completion_tokens, user, kwargs
        )
        if stream:
            llm_stream = client.stream(**request)
            await llm_stream.__aenter__()  # arguments are checked here, as the SDK does
            return AsyncChunkStream(llm_stream, _ChunkMaker(model, include_usage))
        return _completion(await client.generate(**request))


_C = TypeVar("_C", _Completions, _AsyncCompletions)


class _Chat(Generic[_C]):
    def __init__(self, completions: _C) -> None:
        self.completions: _C = completions


class OpenAI:
    """Drop-in for ``openai.OpenAI`` (chat completions): ``client.chat.completions.create(...)``.

    ``api_key``/``base_url``/``organization`` and other SDK options are accepted and ignored:
    keys and endpoints come from the registry.
    """

    def __init__(
        self,
        registry: LLMRegistry | None = None,
        *,
        tracker: UsageTracker | None = None,
        client: DynamicLLMClient | None = None,
        **sdk_options: Any,
    ) -> None:
        self.client = default_client(registry, tracker, client)
        self.chat = _Chat(_Completions(self.client))


class AsyncOpenAI:
    """Drop-in for ``openai.AsyncOpenAI``: ``await client.chat.completions.create(...)``."""

    def __init__(
        self,
        registry: LLMRegistry | None = None,
        *,
        tracker: UsageTracker | None = None,
        client: DynamicLLMClient | None = None,
        **sdk_options: Any,
    ) -> None:
        self.client = default_client(registry, tracker, client)
        self.chat = _Chat(_AsyncCompletions(self.client))
