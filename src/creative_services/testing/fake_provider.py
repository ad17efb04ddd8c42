"""A scriptable fake LLM provider on loopback: OpenAI and Anthropic wire formats, streaming too.

::

    with FakeProvider() as fake:
        fake.fail(429, headers={"retry-after": "2"})
        fake.reply("hello", prompt_tokens=12, completion_tokens=3)
        fake.stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)
        fake.stream(["Hel", "lo", "!"], fail_after=1)   # connection drops after "Hel"
        entry = LLMEntry(name="fake", provider="openai", model_name="gpt-4o-mini",
                         api_endpoint=fake.base_url, api_key="sk-test-fake")
        ...
        assert len(fake.requests) == 4

The same script serves both wire formats: a request to ``.../messages`` gets Anthropic's
(``provider="anthropic"`` with ``api_endpoint=fake.base_url``), ``.../embeddings`` OpenAI's
embeddings (a vector per input, derived from its text; base64 when ``encoding_format`` asks),
``.../responses`` OpenAI's Responses API answer (the scripted text as its output), anything
else OpenAI's chat completions. A request with ``"stream": true`` gets server-sent events
(OpenAI chunks ending in ``data: [DONE]``, plus a usage chunk when
``stream_options.include_usage`` is set; Anthropic's ``message_start`` ... ``message_stop``
events), whether the answer was scripted with :meth:`FakeProvider.stream` or
:meth:`FakeProvider.reply`.

Scripted answers are served in order; when none is left, every request gets a default answer
(streamed when the request asks for a stream). Standard library only; the server runs in a
daemon thread, so it works with sync and async tests.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeProvider", "RecordedRequest", "ScriptedReply"]


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: hundreds of concurrent connections (load and
    # fault tests) would wait seconds for SYN retransmits instead of reaching the handler.
    request_queue_size = 2048


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received (headers lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float

    @property
    def query(self) -> str:
        """The URL's query string ("" when none)."""
        return self.path.partition("?")[2]


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    """One scripted answer: a status, headers and a JSON body; or a dropped connection.

    Answers (``status`` 200 with ``content`` or ``chunks``) are rendered in the wire format the
    request asks for; ``body`` holds the OpenAI rendering, or an error's exact body.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    reset: bool = False
    content: str | None = None
    chunks: tuple[str, ...] | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    usage: bool = True
    usage_extra: Mapping[str, Any] | None = None
    model: str | None = None
    fail_after: int | None = None
    chunk_delay: float = 0.0
    error_message: str | None = None
    """Set for :meth:`FakeProvider.fail` without an explicit body: rendered per wire format."""

    @property
    def is_answer(self) -> bool:
        """A successful completion (as opposed to an error, a raw body or a reset)."""
        return not self.reset and (self.content is not None or self.chunks is not None)

    @property
    def text(self) -> str:
        """The whole answer text."""
        return "".join(self.chunks) if self.chunks is not None else self.content or ""


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
        body["usage"] = _openai_usage(prompt_tokens, completion_tokens)
    return body


def _openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def error_body(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": "fake_error", "code": code, "param": None}}


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """An Anthropic-style error object."""
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_message_body(
    content: str, *, model: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """An Anthropic Messages API ``message`` object."""
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": content}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
    }


def _openai_events(reply: ScriptedReply, model: str, include_usage: bool) -> Iterable[bytes]:
    """The SSE frames of an OpenAI chat.completion.chunk stream; yields each content chunk as
    one frame (so ``fail_after`` counts frames after the role frame)."""
    created = int(time.time())

    def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    yield frame(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    )
    for piece in _pieces(reply):
        yield frame([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield frame([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if include_usage and reply.usage:
        usage = _openai_usage(reply.prompt_tokens, reply.completion_tokens)
        usage.update(reply.usage_extra or {})
        yield frame([], usage=usage)
    yield b"data: [DONE]\n\n"


def embedding_vector(text: str) -> list[float]:
    """The fake's embedding of ``text``: a short vector derived from it (same text, same vector)."""
    data = text.encode()
    return [float(len(data)), float(sum(data) % 997), float(data[0] if data else 0) / 255.0]


def embeddings_body(request: Any, *, model: str, prompt_tokens: int) -> dict[str, Any]:
    """An OpenAI embeddings ``list`` for the request's ``input`` (a string or a list)."""
    body = request if isinstance(request, dict) else {}
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text if isinstance(text, str) else json.dumps(text))
        embedding: Any = vector
        if as_base64:
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") or model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def responses_body(
    content: str, *, model: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """An OpenAI Responses API ``response`` object whose output is ``content``."""
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_fake",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": content, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _anthropic_events(reply: ScriptedReply, model: str) -> Iterable[bytes]:
    """The SSE events of an Anthropic Messages stream (the first two are not content)."""

    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    prompt = reply.prompt_tokens if reply.usage else 0
    completion = reply.completion_tokens if reply.usage else 0
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": 1 if reply.usage else 0},
    }
    yield event("message_start", {"type": "message_start", "message": message})
    yield event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    for piece in _pieces(reply):
        yield event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
    yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": completion},
        },
    )
    yield event("message_stop", {"type": "message_stop"})


def _pieces(reply: ScriptedReply) -> tuple[str, ...]:
    if reply.chunks is not None:
        return reply.chunks
    return (reply.content,) if reply.content else ()


class FakeProvider:
    """An OpenAI- and Anthropic-compatible server on 127.0.0.1 with a scripted reply queue."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._script: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self.default_content = "fake answer"
        self.model = "fake-model"
        self._server = _Server((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to use as an entry's ``api_endpoint`` (ends in ``/v1``), for OpenAI-style
        and Anthropic entries alike."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    def start(self) -> FakeProvider:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-provider",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (from another thread) or Ctrl-C."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._stopping.set()
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving and close the socket; wakes handlers waiting out a ``delay``."""
        self._stopping.set()
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
        ``usage_extra`` adds fields to it, e.g. OpenRouter's ``{"cost": 0.002}``).

        A streaming request gets it as a stream of one content chunk."""
        body = completion_body(
            content,
            model=model or self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage=usage,
        )
        if usage and usage_extra:
            body["usage"].update(usage_extra)
        reply = ScriptedReply(
            200,
            dict(headers or {}),
            body,
            delay,
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage=usage,
            usage_extra=dict(usage_extra or {}),
            model=model,
        )
        self._queue(reply, times)

    def stream(
        self,
        chunks: Sequence[str],
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        usage: bool = True,
        usage_extra: Mapping[str, Any] | None = None,
        fail_after: int | None = None,
        chunk_delay: float = 0.0,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a streamed answer, one SSE content frame per item of ``chunks``.

        ``usage=False`` sends no usage (OpenAI: no usage chunk even when the request asks for
        one; Anthropic: zero token counts). ``fail_after=N`` closes the connection abruptly
        (mid chunked body, no terminating chunk) right after the N-th content chunk: a stream
        that breaks midway. ``chunk_delay`` waits that many seconds before each content
        chunk; ``delay`` before the response headers. A non-streaming request gets the joined
        text as one completion (or, with ``fail_after``, a dropped connection).
        """
        reply = ScriptedReply(
            200,
            dict(headers or {}),
            None,
            delay,
            chunks=tuple(chunks),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage=usage,
            usage_extra=dict(usage_extra or {}),
            model=model,
            fail_after=fail_after,
            chunk_delay=chunk_delay,
        )
        self._queue(reply, times)

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
        """Queue an error answer with ``status`` (and e.g. ``retry-after`` headers); without
        ``body``, the error object has the wire format of the request (OpenAI or Anthropic).
        A ``bytes`` body is sent as it is, so ``fail(200, body=b"<html>...")`` scripts a
        malformed answer (give ``headers={"content-type": ...}`` to change its type)."""
        payload = body if body is not None else error_body(status, message, code=code)
        reply = ScriptedReply(
            status,
            dict(headers or {}),
            payload,
            delay,
            error_message=message if body is None else None,
        )
        self._queue(reply, times)

    def reset_connection(self, *, times: int = 1) -> None:
        """Queue a dropped connection: the socket closes without any HTTP answer."""
        self._queue(ScriptedReply(reset=True), times)

    def hang(self, seconds: float = 30.0, *, times: int = 1) -> None:
        """Queue an answer that comes only after ``seconds`` (for timeout tests); :meth:`stop`
        cuts the wait short."""
        self.reply(self.default_content, delay=seconds, times=times)

    def clear(self) -> None:
        """Forget the unserved script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """How many scripted answers have not been served yet."""
        with self._lock:
            return len(self._script)

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
        return ScriptedReply(200, {}, body, content=self.default_content)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default stderr access log."""

            def do_GET(self) -> None:
                self._send_json(404, error_body(404, f"no route for GET {self.path}"), {})

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
                if reply.delay and fake._stopping.wait(reply.delay):
                    self._reset()
                    return
                if reply.reset:
                    self._reset()
                    return
                route = self.path.split("?", 1)[0].rstrip("/")
                anthropic = route.endswith("/messages")
                if route.endswith(("/embeddings", "/responses")) and reply.is_answer:
                    self._send_json(200, self._endpoint_body(route, reply, body), reply.headers)
                    return
                wants_stream = isinstance(body, dict) and body.get("stream") is True
                try:
                    if not reply.is_answer:
                        payload = reply.body
                        if reply.error_message is not None and anthropic:
                            payload = anthropic_error_body(reply.status, reply.error_message)
                        self._send_json(reply.status, payload, reply.headers)
                    elif wants_stream:
                        self._send_stream(reply, body, anthropic)
                    elif reply.fail_after is not None:
                        self._reset()
                    else:
                        self._send_json(200, self._answer_body(reply, anthropic), reply.headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (deadline test): nothing to answer

            def _endpoint_body(self, route: str, reply: ScriptedReply, request: Any) -> Any:
                model = reply.model or fake.model
                tokens = reply.prompt_tokens, reply.completion_tokens
                if route.endswith("/embeddings"):
                    return embeddings_body(request, model=model, prompt_tokens=tokens[0])
                return responses_body(
                    reply.text, model=model, prompt_tokens=tokens[0], completion_tokens=tokens[1]
                )

            def _answer_body(self, reply: ScriptedReply, anthropic: bool) -> Any:
                model = reply.model or fake.model
                if anthropic:
                    return anthropic_message_body(
                        reply.text,
                        model=model,
                        prompt_tokens=reply.prompt_tokens if reply.usage else 0,
                        completion_tokens=reply.completion_tokens if reply.usage else 0,
                    )
                if reply.body is not None and reply.chunks is None:
                    return reply.body
                body = completion_body(
                    reply.text,
                    model=model,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    usage=reply.usage,
                )
                if reply.usage and reply.usage_extra:
                    body["usage"].update(reply.usage_extra)
                return body

            def _send_json(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
                # bytes go out as they are: a malformed answer (HTML, broken JSON, ``null``)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if "content-type" not in {name.lower() for name in headers}:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _send_stream(self, reply: ScriptedReply, body: Any, anthropic: bool) -> None:
                model = reply.model or fake.model
                if anthropic:
                    frames = _anthropic_events(reply, model)
                else:
                    options = body.get("stream_options") or {}
                    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
                    frames = _openai_events(reply, model, include_usage)
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("transfer-encoding", "chunked")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                leading = 2 if anthropic else 1  # frames before the first content frame
                content_frames = len(_pieces(reply))
                drop_at = None
                if reply.fail_after is not None:
                    drop_at = leading + max(0, min(reply.fail_after, content_frames))
                for index, frame in enumerate(frames):
                    if index == drop_at:
                        self._hang_up()
                        return
                    is_content = leading <= index < leading + content_frames
                    if is_content and reply.chunk_delay and fake._stopping.wait(reply.chunk_delay):
                        self._reset()
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.write(b"0\r\n\r\n")

            def _hang_up(self) -> None:
                # FIN mid chunked body: the client reads every frame sent so far, then fails
                # with an incomplete body (a reset could discard frames it had not read yet).
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                finally:
                    self.connection.close()

            def _reset(self) -> None:
                self.close_connection = True
                # linger 0: close sends RST, as a real reset does
                linger = struct.pack("ii", 1, 0)
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                finally:
                    self.connection.close()

        return Handler
