"""The gateway's ASGI application: the OpenAI HTTP API served through :class:`DynamicLLMClient`.

Requests and answers are translated by :mod:`creative_services._wire`, the module the drop-in
uses, so the gateway and the drop-in answer alike. Every call is made with the virtual key's
user (budgets and usage rows are the key's, whatever ``user`` the body names), within the
gateway's deadline, and with none of the client's headers: provider keys stay here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from creative_services import _wire
from creative_services._log import get_logger
from creative_services.exceptions import (
    CreativeServicesError,
    PermissionDeniedError,
)
from creative_services.gateway.keys import BaseKeyStore, VirtualKey
from creative_services.types import LLMEntry

__all__ = ["GatewayApp", "GatewayLimits", "mount"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_NO_HTTP_STATUS = {"timeout": 504, "connection": 502}


@dataclass(frozen=True, slots=True)
class GatewayLimits:
    """What one request may cost the gateway."""

    max_body_bytes: int = 4 * 1024 * 1024
    deadline: float = 60.0
    """Seconds for the whole call; a request's own ``timeout`` can only shorten it."""


class _Refusal(Exception):
    """A request refused before any call: status and OpenAI error body."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": "invalid_request_error",
                               "param": param, "code": code}}  # fmt: skip


async def _body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Refusal(400, "the client went away before the body arrived", "disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refusal(413, f"the request body is over {limit} bytes: send less", "too_large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _decode(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refusal(400, f"the request body is not JSON: {exc}", "invalid_json") from None


async def _send_json(send: Send, status: int, body: Any, headers: Mapping[str, str] = {}) -> int:
    data = json.dumps(body, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
    return status


async def _send_error(send: Send, exc: CreativeServicesError) -> int:
    answer = _wire.error_answer(exc)
    status = _NO_HTTP_STATUS.get(answer.kind, answer.status)
    return await _send_json(send, status, answer.body, answer.headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


_INTERNAL = {"error": {"message": "the gateway failed on this request (logged as "
                       "gateway_failed); retry, or report it", "type": "server_error",
                       "param": None, "code": "internal_error"}}  # fmt: skip


class _Tracked:
    """``send`` that remembers whether the response has started."""

    def __init__(self, send: Send) -> None:
        self._send, self.started = send, False

    async def __call__(self, message: dict[str, Any]) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class GatewayApp:
    """``POST /v1/chat/completions`` (JSON and SSE), ``GET /v1/models``, ``GET /healthz``.

    ``client`` makes the calls (its registry, tracker, budget, retries and cache apply);
    ``keys`` authenticates every request but ``/healthz``.
    """

    def __init__(
        self, client: Any, keys: BaseKeyStore, limits: GatewayLimits | None = None
    ) -> None:
        self.client = client
        self.keys = keys
        self.limits = limits or GatewayLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.monotonic()
        info: dict[str, Any] = {}
        sent = _Tracked(send)
        try:
            status = await self._route(scope, receive, sent, info)
        except _Refusal as exc:
            status = await _send_json(sent, exc.status, exc.body)
        except CreativeServicesError as exc:
            status = await _send_error(sent, exc)
        except Exception as exc:  # a bug of ours: an OpenAI-shaped 500, never a traceback
            get_logger().exception("gateway_failed", error=type(exc).__name__)
            if sent.started:
                raise
            status = await _send_json(sent, 500, _INTERNAL)
        get_logger().info(
            "gateway_request", method=scope.get("method"), path=scope.get("path"),
            status=status, ms=round((time.monotonic() - started) * 1000, 1), **info,
        )  # fmt: skip

    async def _route(self, scope: Scope, receive: Receive, send: Send, info: dict[str, Any]) -> int:
        method, path = scope.get("method", ""), str(scope.get("path", "")).rstrip("/")
        if path == "/healthz" and method == "GET":
            return await _send_json(send, 200, {"status": "ok"})
        if path not in ("/v1/models", "/v1/chat/completions"):
            answer = _wire.not_served(method, path)
            return await _send_json(send, 404, answer.body, answer.headers)
        want = "GET" if path == "/v1/models" else "POST"
        if method != want:
            raise _Refusal(405, f"{path} answers {want}, not {method}", "method_not_allowed")
        key = await asyncio.to_thread(self.keys.authenticate, _header(scope, b"authorization"))
        info.update(key_id=key.key_id, user=key.user_id)
        if path == "/v1/models":
            return await _send_json(send, 200, self._models(key))
        raw = await _body(receive, self.limits.max_body_bytes)
        return await self._chat(key, _decode(raw), send, info)

    def _models(self, key: VirtualKey) -> dict[str, Any]:
        body = _wire.models_body(self.client.registry)
        body["data"] = [m for m in body["data"] if key.allows(m["id"])]
        return body

    def _select(self, key: VirtualKey, call: _wire.ChatCall) -> tuple[Any, dict[str, Any]]:
        """The client and ``generate()`` arguments for the call's model, if the key allows it."""
        selected = _wire.resolve_model(self.client.registry, call.model)
        client = self.client
        if isinstance(selected, LLMEntry):
            names: tuple[str | None, ...] = (selected.name, selected.tier.value)
            client, selected = client.for_entry(selected), {"llm_name": selected.name}
        elif "llm_name" in selected:
            entry = self.client.registry.get_by_name(selected["llm_name"])
            names = (entry.name, entry.model_name, entry.tier.value)
        else:
            names = (str(selected.get("tier")),)
        if not key.allows(call.model, *names):
            raise PermissionDeniedError(
                f"virtual key {key.key_id} may not use model {call.model!r}; it may use "
                f"{', '.join(key.models)}"
            )
        kwargs = {**call.kwargs, **selected, "user_id": key.user_id}
        asked = kwargs.get("timeout")
        deadline = self.limits.deadline
        ok = isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0
        kwargs["timeout"] = min(float(asked), deadline) if ok else deadline  # type: ignore[arg-type]
        return client, kwargs

    async def _chat(self, key: VirtualKey, body: object, send: Send, info: dict[str, Any]) -> int:
        call = _wire.chat_call(body, {}, {})  # no client header reaches a provider
        info["model"] = call.model
        client, kwargs = self._select(key, call)
        if call.stream:
            return await _stream(client.stream(**kwargs), call, send)
        response = await client.generate(**kwargs)
        headers = {"x-request-id": _wire.request_id(response)}
        return await _send_json(send, 200, _wire.completion_body(response, call.model), headers)


async def _stream(stream: Any, call: _wire.ChatCall, send: Send) -> int:
    """SSE frames as the text arrives; failures before the first text are HTTP errors."""
    encoder = _wire.ChunkEncoder(call.model, call.include_usage)
    try:
        try:
            first: str | None = await stream.__anext__()
        except StopAsyncIteration:
            first = None
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            if first is not None:
                await _frame(send, encoder.text(first))
                async for text in stream:
                    await _frame(send, encoder.text(text))
            await _frame(send, encoder.last(stream.response))
        except CreativeServicesError as exc:
            await _frame(send, encoder.error(exc))
        await send({"type": "http.response.body", "body": b""})
        return 200
    finally:
        await stream.aclose()


async def _frame(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def mount(app: Any, gateway: GatewayApp, prefix: str = "/llm") -> Callable[..., Awaitable[None]]:
    """An ASGI application that serves ``prefix`` (``/llm/v1/chat/completions``, ...) with
    ``gateway`` and everything else with ``app`` (e.g. Django's ``get_asgi_application()``)."""
    prefix = "/" + prefix.strip("/")

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and (path == prefix or path.startswith(prefix + "/")):
            inner = {**scope, "path": path[len(prefix) :] or "/",
                     "root_path": str(scope.get("root_path", "")) + prefix}  # fmt: skip
            await gateway(inner, receive, send)
        else:
            await app(scope, receive, send)

    return application
