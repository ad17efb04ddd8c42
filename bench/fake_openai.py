"""A minimal fake OpenAI chat-completions server for benchmarks (stdlib asyncio only).

Run it as its own process so its CPU is not counted against the client being measured::

    python bench/fake_openai.py [--port 0]

It listens on 127.0.0.1, prints ``PORT <n>`` on the first stdout line once it is ready, and
answers ``POST /v1/chat/completions`` at once with a fixed small completion (with usage), or,
for ``"stream": true``, with a server-sent-event stream of ``STREAM_WORDS`` (30) content chunks,
a finish chunk, a usage chunk when ``stream_options.include_usage`` is set, and ``[DONE]``
(chunked transfer encoding, one HTTP chunk per event, written at once).
``GET /stats`` returns ``{"connections": ..., "requests": ...}`` so a benchmark can tell whether a
client reuses its connections. HTTP/1.1 keep-alive; request bodies with Content-Length or chunked.
It stops on SIGTERM/SIGINT or when stdin closes (so it never outlives its parent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading

COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_bench",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the fake server."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}


def _response(status: str, body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: req_bench\r\n"
        f"connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode("ascii") + body


OK = _response("200 OK", json.dumps(COMPLETION, separators=(",", ":")).encode())

STREAM_WORDS = 30


def _stream_response(include_usage: bool) -> bytes:
    base = {k: COMPLETION[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": f"word{i} "}) for i in range(STREAM_WORDS)]
    events.append(chunk({}, "stop"))
    if include_usage:
        usage = {"prompt_tokens": 12, "completion_tokens": STREAM_WORDS, "total_tokens": 42}
        events.append({**base, "choices": [], "usage": usage})
    datas = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    datas.append(b"data: [DONE]\n\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(d), d) for d in datas) + b"0\r\n\r\n"
    head = (
        "HTTP/1.1 200 OK\r\n"
        "content-type: text/event-stream\r\n"
        "transfer-encoding: chunked\r\n"
        "x-request-id: req_bench\r\n"
        "connection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


STREAM = {True: _stream_response(True), False: _stream_response(False)}
NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}')


class _Stats:
    connections = 0
    requests = 0
    streams = 0


def _wants_stream(body: bytes, headers: dict[str, str]) -> str:
    """ "" for a plain completion, "plain" or "usage" (include_usage) for a stream."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    try:
        request = json.loads(body)
    except ValueError:
        return ""
    if not request.get("stream"):
        return ""
    options = request.get("stream_options") or {}
    return "usage" if options.get("include_usage") else "plain"


def _dechunk(body: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        line_end = body.find(b"\r\n", pos)
        size = int(body[pos:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


class _HTTP(asyncio.Protocol):
    """Just enough HTTP/1.1: pipelining-safe request framing, keep-alive, fixed answers."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _Stats.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body_end = self._chunked_end(start)
            if body_end < 0:
                return False
        else:
            body_end = start + int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < body_end:
                return False
        body = bytes(self.buffer[start:body_end])
        del self.buffer[:body_end]
        method, path, *_ = head[0].split(" ")
        path = path.split("?", 1)[0]
        assert self.transport is not None
        if method == "POST" and path.endswith("/chat/completions"):
            _Stats.requests += 1
            stream = b'"stream"' in body and _wants_stream(body, headers)
            if stream:
                _Stats.streams += 1
                self.transport.write(STREAM[stream == "usage"])
            else:
                self.transport.write(OK)
        elif method == "GET" and path == "/stats":
            stats = {
                "connections": _Stats.connections,
                "requests": _Stats.requests,
                "streams": _Stats.streams,
            }
            self.transport.write(_response("200 OK", json.dumps(stats).encode()))
        else:
            self.transport.write(NOT_FOUND)
        if headers.get("connection", "").lower() == "close":
            self.transport.close()
            return False
        return True

    def _chunked_end(self, pos: int) -> int:
        """Index just past a complete chunked body starting at ``pos``, or -1 if incomplete."""
        while True:
            line_end = self.buffer.find(b"\r\n", pos)
            if line_end < 0:
                return -1
            size = int(bytes(self.buffer[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2 + size + 2
            if len(self.buffer) < pos:
                return -1
            if size == 0:
                return pos


async def serve(port: int) -> None:
    """Serve until SIGTERM/SIGINT or until stdin reaches EOF."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HTTP, "127.0.0.1", port, backlog=512)
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:  # the parent died or closed our stdin: exit with it
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    args = parser.parse_args()
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
