"""A scriptable fake OpenAI-compatible provider on loopback, for integration tests.

::

    with FakeProvider() as fake:
        fake.fail(429, headers={"retry-after": "2"})
        fake.reply("hello", prompt_tokens=12, completion_tokens=3)
        entry = LLMEntry(name="fake", provider="openai", model_name="gpt-4o-mini",
                         api_endpoint=fake.base_url, api_key="test")
        ...
        assert len(fake.requests) == 2

Scripted answers are served in order; when none is left, every request gets a default answer.
Standard library only; the server runs in a daemon thread, so it works with sync and async tests.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeProvider", "RecordedRequest", "ScriptedReply"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received (headers lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One scripted answer: a status, headers and a JSON body; or a dropped connection."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    reset: bool = False


def completion_body(
    content: str, *, model: str, prompt_tokens: int, completion_tokens: int, usage: bool = True
) -> dict[str, Any]:
    """An OpenAI chat.completion object."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return body


def error_body(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": "fake_error", "code": code, "param": None}}


class FakeProvider:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 with a scripted reply queue."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._script: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.default_content = "fake answer"
        self.model = "fake-model"
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to use as an entry's ``api_endpoint`` (ends in ``/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeProvider:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-provider",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- scripting ---------------------------------------------------------------------------

    def reply(
        self,
        content: str = "fake answer",
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        usage: bool = True,
        usage_extra: Mapping[str, Any] | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a successful completion (``usage=False`` leaves the usage block out;
        ``usage_extra`` adds fields to it, e.g. OpenRouter's ``{"cost": 0.002}``)."""
        body = completion_body(
            content,
            model=model or self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage=usage,
        )
        if usage and usage_extra:
            body["usage"].update(usage_extra)
        self._queue(ScriptedReply(200, dict(headers or {}), body, delay), times)

    def fail(
        self,
        status: int,
        message: str = "scripted failure",
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue an error answer with ``status`` (and e.g. ``retry-after`` headers)."""
        payload = body if body is not None else error_body(status, message, code=code)
        self._queue(ScriptedReply(status, dict(headers or {}), payload, delay), times)

    def reset_connection(self, *, times: int = 1) -> None:
        """Queue a dropped connection: the socket closes without any HTTP answer."""
        self._queue(ScriptedReply(reset=True), times)

    def _queue(self, reply: ScriptedReply, times: int) -> None:
        with self._lock:
            self._script.extend([reply] * times)

    def _next(self, request: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        body = completion_body(
            self.default_content, model=self.model, prompt_tokens=10, completion_tokens=5
        )
        return ScriptedReply(200, {}, body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default stderr access log."""

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                request = RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                reply = fake._next(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    self.close_connection = True
                    # linger 0: close sends RST, as a real reset does
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    return
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (deadline test): nothing to answer

        return Handler
