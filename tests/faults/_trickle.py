"""A raw loopback SSE server that trickles an OpenAI-format stream slowly, and notices when the
client hangs up (the proof that a timed-out stream closed its HTTP response).

The first content frame is sent at once, each later one ``gap`` seconds after the one before;
with ``byte_gap`` the frames after the first are sent one byte at a time, ``byte_gap`` seconds
apart (bytes keep flowing, so only a bound between whole chunks can catch it). ``head_delay``
waits before the response headers. The waits watch the socket: when the client closes it,
``closed_at`` is set and sending stops.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def _frame(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def openai_frames(words: Sequence[str], *, model: str = "gpt-4o-mini") -> list[bytes]:
    """role chunk, one frame per word, finish chunk, usage chunk, [DONE]."""
    base = {"id": "chatcmpl-trickle", "object": "chat.completion.chunk", "created": 1,
            "model": model}  # fmt: skip
    frames = [_frame({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    frames += [
        _frame({**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        for w in words
    ]
    frames.append(_frame({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    usage = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7 + len(words)}
    frames.append(_frame({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return frames


class TrickleServer:
    """Serves every POST with the same slow stream; one connection at a time is enough."""

    def __init__(
        self,
        words: Sequence[str],
        *,
        gap: float = 0.0,
        byte_gap: float | None = None,
        head_delay: float = 0.0,
    ) -> None:
        self.words = list(words)
        self.gap = gap
        self.byte_gap = byte_gap
        self.head_delay = head_delay
        self.requests = 0
        self.closed_at: float | None = None
        """When the client hung up before the stream's end (time.monotonic)."""
        self.finished = threading.Event()
        """Set when a connection is over: sent to the end, or closed by the client."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes to see stop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def start(self) -> TrickleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if not self._read_request(conn):
                return
            self.requests += 1
            try:
                if self.head_delay and not self._wait(conn, self.head_delay):
                    return
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                self._send_frames(conn)
            except OSError:
                self.closed_at = self.closed_at or time.monotonic()
            finally:
                self.finished.set()

    def _send_frames(self, conn: socket.socket) -> None:
        frames = openai_frames(self.words)
        for index, frame in enumerate(frames):
            is_content = 2 <= index <= len(self.words)
            if is_content and self.gap and not self._wait(conn, self.gap):
                return
            if self.byte_gap is not None and index > 1:
                for byte in b"%x\r\n%s\r\n" % (len(frame), frame):
                    if not self._wait(conn, self.byte_gap):
                        return
                    conn.sendall(bytes([byte]))
            else:
                conn.sendall(b"%x\r\n%s\r\n" % (len(frame), frame))
        conn.sendall(b"0\r\n\r\n")
        self._wait(conn, 5.0)  # keep-alive: wait for the client to close (or reuse) it

    def _wait(self, conn: socket.socket, seconds: float) -> bool:
        """Sleep ``seconds`` watching ``conn``; False (and ``closed_at`` set) if it closed."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not self._stop.is_set():
            readable, _, _ = select.select([conn], [], [], min(left, 0.05))
            if readable:
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.closed_at = time.monotonic()
                    return False
        return not self._stop.is_set()

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return False
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            piece = conn.recv(65536)
            if not piece:
                return False
            body += piece
        conn.settimeout(None)
        return True


@contextmanager
def trickle(words: Sequence[str], **kw: float | None) -> Iterator[TrickleServer]:
    server = TrickleServer(words, **kw).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
