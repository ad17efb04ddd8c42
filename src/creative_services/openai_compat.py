"""The OpenAI drop-in: the ``openai`` SDK's own clients, served through :class:`DynamicLLMClient`.

Before::

    from openai import OpenAI
    client = OpenAI()
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])

After (only the import changes)::

    from creative_services.openai_compat import OpenAI
    client = OpenAI()                      # registry: Django when set up, else from the env
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])

:class:`OpenAI` and :class:`AsyncOpenAI` *are* ``openai.OpenAI`` / ``openai.AsyncOpenAI``
(subclasses): the SDK builds every request and parses every answer itself, so its types,
``with_raw_response``, ``with_streaming_response``, ``with_options``, ``.parse()``,
``.stream()``, streams, exceptions and the libraries that take a client work unchanged. Only
the HTTP transport is ours: it serves each request through the registry, retries, fallbacks,
budgets and usage records (``_wire.py`` translates).

- ``model`` is a tier (``"standard"``), a registry entry name, or a model id an entry or a
  configured provider serves (``gpt-4o``, ``openai/gpt-4o``, ``ft:gpt-4o-mini:org::id``).
  A model nothing serves goes to ``base_url`` with ``api_key`` when you passed either to the
  constructor; else the SDK raises ``openai.NotFoundError``.
- What you send is forwarded unchanged and nothing is added (no entry default ``temperature``
  or ``max_tokens``); ``default_headers``/``extra_headers``/``organization``/``project`` go to
  the provider as headers; ``extra_query`` goes to the provider's URL on OpenAI-compatible
  entries (elsewhere, and with ``responses.create``, it is a ``BadRequestError``).
- ``max_retries`` (default 2) is our retry policy's, ``timeout`` (default: the policy's 60 s)
  our deadline over every attempt and fallback (for streams also the longest wait between two
  chunks, ``idle_timeout``); the SDK's own retries are off.
- Errors are the SDK's classes (``openai.RateLimitError`` ...); ``exc.creative_services_error``
  is this library's error (timeouts and connection failures: ``exc.__cause__.__cause__``).
- ``models.list()`` lists the tiers and the active entries; ``embeddings.create`` and
  ``responses.create`` (not streamed) go through LiteLLM for the selected entry's provider,
  with our retries, deadline and one usage record each; other endpoints (files, audio,
  streamed or stored responses ...) raise ``openai.NotFoundError`` saying they are not served.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx2
import openai
from openai import NOT_GIVEN, NotGiven

from creative_services import _endpoints, _sync, _wire
from creative_services._wire import resolve_model
from creative_services.bridges import default_client
from creative_services.client import DynamicLLMClient
from creative_services.exceptions import CreativeServicesError
from creative_services.registry import LLMRegistry
from creative_services.streaming import LLMStream, SyncLLMStream
from creative_services.tracking import UsageTracker
from creative_services.types import LLMEntry, LLMResponse

__all__ = ["AsyncOpenAI", "OpenAI", "resolve_model"]

_ERROR_KEY = "creative_services_error"
_PLACEHOLDER_KEY = "creative-services-registry"
"""Sent to our own transport only (never to a provider): the registry holds the keys."""


class _Server:
    """What the transports share: the client (with the caller's retries), and the fallback."""

    def __init__(self, base: DynamicLLMClient, max_retries: int, fallback: LLMEntry | None) -> None:
        self.base = base
        self.max_retries = max_retries
        self.fallback = fallback
        self.client = base
        if max_retries != base.retry_policy.max_retries:
            self.client = copy.copy(base)  # shares tracker, budget, cache, failed_records
            self.client.retry_policy = dataclasses.replace(
                base.retry_policy, max_retries=max_retries
            )

    def call(self, request: httpx2.Request, body: bytes) -> tuple[DynamicLLMClient, _wire.ChatCall]:
        """The client and call for a chat request. Raises: CreativeServicesError."""
        call = _wire.chat_call(_decode(body), request.headers, dict(request.url.params))
        selected = resolve_model(self.client.registry, call.model, self.fallback)
        client = self.client
        if isinstance(selected, LLMEntry):
            client, selected = client.for_entry(selected), {"llm_name": selected.name}
        call.kwargs.update(selected)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if isinstance(timeout, int | float) and "timeout" not in call.kwargs:
            call.kwargs["timeout"] = timeout
        return client, call

    def endpoint(self, request: httpx2.Request, body: bytes, route: str) -> _endpoints.EndpointCall:
        """The call for an embeddings/responses request. Raises: CreativeServicesError."""
        params = _wire.endpoint_body(_decode(body), request.headers, dict(request.url.params))
        selected = resolve_model(self.client.registry, params["model"], self.fallback)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        timeout = timeout if isinstance(timeout, int | float) else None
        return _endpoints.plan(self.client, route, params, selected, timeout)


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def _route(request: httpx2.Request) -> str:
    path = request.url.path.rstrip("/")
    if request.method == "POST" and path.endswith("/chat/completions"):
        return "chat"
    if request.method == "GET" and path.endswith("/models"):
        return "models"
    if request.method == "POST" and path.endswith(("/embeddings", "/responses")):
        return path.rsplit("/", 1)[1]
    return "other"


def _streamed(route: str, body: bytes) -> bool:
    """A Responses API stream: not served (the SDK's NotFoundError says so)."""
    decoded = _decode(body) if route == "responses" else None
    return isinstance(decoded, dict) and decoded.get("stream") is True


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=dict(headers or {}))


def _error(exc: CreativeServicesError, request: httpx2.Request) -> httpx2.Response:
    """The SDK's view of ``exc``: a status answer, or (timeout, connection) an httpx error."""
    answer = _wire.error_answer(exc)
    if answer.kind == "timeout":
        raise httpx2.ReadTimeout(str(exc), request=request) from exc
    if answer.kind == "connection":
        raise httpx2.ConnectError(str(exc), request=request) from exc
    response = _json(answer.status, answer.body, answer.headers)
    response.extensions[_ERROR_KEY] = exc
    return response


def _answer(response: LLMResponse, model: str) -> httpx2.Response:
    return _json(
        200, _wire.completion_body(response, model), {"x-request-id": _wire.request_id(response)}
    )


def _not_served(request: httpx2.Request, what: str = "") -> httpx2.Response:
    answer = _wire.not_served(request.method, request.url.path, what)
    return _json(answer.status, answer.body, answer.headers)


_SSE = {"content-type": "text/event-stream"}


class _SyncEvents(httpx2.SyncByteStream):
    def __init__(self, stream: SyncLLMStream, first: str | None, encoder: _wire.ChunkEncoder):
        self._stream, self._first, self._encoder = stream, first, encoder

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._first is not None:
                yield self._encoder.text(self._first)
                for text in self._stream:
                    yield self._encoder.text(text)
            yield self._encoder.last(self._stream.response)
        except CreativeServicesError as exc:
            yield self._encoder.error(exc)

    def close(self) -> None:
        self._stream.close()


class _Transport(httpx2.BaseTransport):
    """Serves the sync SDK's requests through the client."""

    def __init__(self, server: _Server) -> None:
        self.server = server

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        route = _route(request)
        if route == "models":
            return _json(200, _wire.models_body(self.server.client.registry))
        if route in _endpoints.ENDPOINTS:
            return self._endpoint(request, route)
        if route != "chat":
            return _not_served(request)
        try:
            client, call = self.server.call(request, request.read())
            if call.stream:
                stream = client.stream_sync(**call.kwargs)
                first = next(stream, None)  # failures before any output are HTTP errors
                encoder = _wire.ChunkEncoder(call.model, call.include_usage)
                return httpx2.Response(
                    200, headers=_SSE, stream=_SyncEvents(stream, first, encoder)
                )
            return _answer(client.generate_sync(**call.kwargs), call.model)
        except CreativeServicesError as exc:
            return _error(exc, request)

    def _endpoint(self, request: httpx2.Request, route: str) -> httpx2.Response:
        body = request.read()
        if _streamed(route, body):
            return _not_served(request, " with stream=True")
        try:
            call = self.server.endpoint(request, body, route)
            return _json(200, _sync.run_sync(_endpoints.run(self.server.client, call)))
        except CreativeServicesError as exc:
            return _error(exc, request)


class _AsyncEvents(httpx2.AsyncByteStream):
    def __init__(self, stream: LLMStream, first: str | None, encoder: _wire.ChunkEncoder):
        self._stream, self._first, self._encoder = stream, first, encoder

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._first is not None:
                yield self._encoder.text(self._first)
                async for text in self._stream:
                    yield self._encoder.text(text)
            yield self._encoder.last(self._stream.response)
        except CreativeServicesError as exc:
            yield self._encoder.error(exc)

    async def aclose(self) -> None:
        await self._stream.aclose()


class _AsyncTransport(httpx2.AsyncBaseTransport):
    """Serves the async SDK's requests through the client."""

    def __init__(self, server: _Server) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        route = _route(request)
        if route == "models":
            return _json(200, _wire.models_body(self.server.client.registry))
        if route in _endpoints.ENDPOINTS:
            return await self._endpoint(request, route)
        if route != "chat":
            return _not_served(request)
        try:
            client, call = self.server.call(request, await request.aread())
            if call.stream:
                stream = client.stream(**call.kwargs)
                try:
                    first: str | None = await stream.__anext__()
                except StopAsyncIteration:
                    first = None
                encoder = _wire.ChunkEncoder(call.model, call.include_usage)
                return httpx2.Response(
                    200, headers=_SSE, stream=_AsyncEvents(stream, first, encoder)
                )
            return _answer(await client.generate(**call.kwargs), call.model)
        except CreativeServicesError as exc:
            return _error(exc, request)

    async def _endpoint(self, request: httpx2.Request, route: str) -> httpx2.Response:
        body = await request.aread()
        if _streamed(route, body):
            return _not_served(request, " with stream=True")
        try:
            ensure_loaded = getattr(self.server.client.registry, "aensure_loaded", None)
            if ensure_loaded is not None:  # a registry that loads lazily (Django): off the loop
                await ensure_loaded()
            call = self.server.endpoint(request, body, route)
            return _json(200, await _sync.run_async(_endpoints.run(self.server.client, call)))
        except CreativeServicesError as exc:
            return _error(exc, request)


def _fallback(api_key: object, base_url: object) -> LLMEntry | None:
    """The entry for models the registry does not serve: the caller's own key and endpoint."""
    if api_key is None and (base_url is None or isinstance(base_url, NotGiven)):
        return None
    endpoint = None if isinstance(base_url, NotGiven) or base_url is None else str(base_url)
    return LLMEntry(
        name="openai/base_url",
        provider="openai" if endpoint is None else "openai_compatible",
        model_name="base_url",
        tier="standard",
        api_key=api_key if isinstance(api_key, str) else "",
        api_endpoint=endpoint,
    )


def _server(
    http_client: object,
    registry: LLMRegistry | None,
    tracker: UsageTracker | None,
    client: DynamicLLMClient | None,
    max_retries: int,
    api_key: object,
    base_url: object,
) -> _Server:
    """A new server; a copy (``with_options``) keeps its original's client and fallback."""
    transport = getattr(http_client, "_transport", None)
    old = getattr(transport, "server", None)
    if isinstance(old, _Server):
        return _Server(old.base, max_retries, old.fallback)
    return _Server(
        default_client(registry, tracker, client), max_retries, _fallback(api_key, base_url)
    )


def _sdk_options(
    server: _Server, api_key: object, timeout: object, sdk_options: dict[str, Any]
) -> dict[str, Any]:
    if isinstance(timeout, NotGiven):
        timeout = server.client.retry_policy.timeout  # the SDK's 600 s is not ours
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or _PLACEHOLDER_KEY
    return {**sdk_options, "api_key": key, "timeout": timeout, "max_retries": 0}


def _attach(error: openai.APIStatusError, response: httpx2.Response) -> openai.APIStatusError:
    ours = response.extensions.get(_ERROR_KEY)
    if ours is not None:
        error.creative_services_error = ours  # type: ignore[attr-defined]
    return error


class OpenAI(openai.OpenAI):
    """``openai.OpenAI`` served through a :class:`DynamicLLMClient` (see the module docs).

    ``registry``/``tracker`` or ``client`` choose the client (default: the bridges' default
    registry and tracker); every other argument is the SDK's.
    """

    def __init__(
        self,
        registry: LLMRegistry | None = None,
        *,
        tracker: UsageTracker | None = None,
        client: DynamicLLMClient | None = None,
        api_key: str | None = None,
        base_url: str | httpx2.URL | NotGiven | None = NOT_GIVEN,
        timeout: Any = NOT_GIVEN,
        max_retries: int = openai.DEFAULT_MAX_RETRIES,
        http_client: httpx2.Client | None = None,
        **sdk_options: Any,
    ) -> None:
        server = _server(http_client, registry, tracker, client, max_retries, api_key, base_url)
        self.llm_client = server.client
        """The :class:`DynamicLLMClient` that serves this client's requests."""
        super().__init__(
            base_url=base_url,
            http_client=httpx2.Client(transport=_Transport(server)),
            **_sdk_options(server, api_key, timeout, sdk_options),
        )
        self._cs_server = server

    def copy(self, *, max_retries: int | NotGiven = NOT_GIVEN, **options: Any) -> OpenAI:
        """The SDK's ``copy``/``with_options``; ``max_retries`` is our retry policy's."""
        retries = self._cs_server.max_retries if isinstance(max_retries, NotGiven) else max_retries
        return super().copy(max_retries=retries, **options)

    with_options = copy

    def _make_status_error(
        self, err_msg: str, *, body: object, response: httpx2.Response
    ) -> openai.APIStatusError:
        return _attach(super()._make_status_error(err_msg, body=body, response=response), response)


class AsyncOpenAI(openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` served through a :class:`DynamicLLMClient` (see the module docs)."""

    def __init__(
        self,
        registry: LLMRegistry | None = None,
        *,
        tracker: UsageTracker | None = None,
        client: DynamicLLMClient | None = None,
        api_key: str | None = None,
        base_url: str | httpx2.URL | NotGiven | None = NOT_GIVEN,
        timeout: Any = NOT_GIVEN,
        max_retries: int = openai.DEFAULT_MAX_RETRIES,
        http_client: httpx2.AsyncClient | None = None,
        **sdk_options: Any,
    ) -> None:
        server = _server(http_client, registry, tracker, client, max_retries, api_key, base_url)
        self.llm_client = server.client
        """The :class:`DynamicLLMClient` that serves this client's requests."""
        super().__init__(
            base_url=base_url,
            http_client=httpx2.AsyncClient(transport=_AsyncTransport(server)),
            **_sdk_options(server, api_key, timeout, sdk_options),
        )
        self._cs_server = server

    def copy(self, *, max_retries: int | NotGiven = NOT_GIVEN, **options: Any) -> AsyncOpenAI:
        """The SDK's ``copy``/``with_options``; ``max_retries`` is our retry policy's."""
        retries = self._cs_server.max_retries if isinstance(max_retries, NotGiven) else max_retries
        return super().copy(max_retries=retries, **options)

    with_options = copy

    def _make_status_error(
        self, err_msg: str, *, body: object, response: httpx2.Response
    ) -> openai.APIStatusError:
        return _attach(super()._make_status_error(err_msg, body=body, response=response), response)
