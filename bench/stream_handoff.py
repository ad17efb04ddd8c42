"""How often ``client.stream()`` wakes the caller's event loop from the library's loop thread.

Run::

    uv run python bench/stream_handoff.py [--streams 200]

``streaming._Pipe.put`` wakes the consumer (``loop.call_soon_threadsafe``: a write to the
loop's self-pipe and one more loop iteration) only when the consumer is waiting, and at most once
per iteration of the library's loop (``_Pipe._wake``, scheduled with ``call_soon``). Counts those
wake-ups per stream (30 content chunks from ``bench/fake_openai.py``) at concurrency 1 and 32,
and the CPU one wake-up costs (``call_soon_threadsafe`` from another thread into an idle loop,
timed alone).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from bench_generate import fake_server, run_async
from run import PROMPT, _entry


async def measure(streams: int, base: str) -> None:
    from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker, streaming

    client = DynamicLLMClient(DictRegistry([_entry(base)]), tracker=InMemoryUsageTracker())
    original_put, original_wake = streaming._Pipe.put, streaming._Pipe._wake
    counts = {"puts": 0, "wakeups": 0}

    def put(self: streaming._Pipe, item: object) -> None:
        counts["puts"] += 1
        original_put(self, item)  # type: ignore[arg-type]

    def wake(self: streaming._Pipe) -> None:
        if self._waiter is not None:
            counts["wakeups"] += 1
        original_wake(self)

    async def one() -> None:
        stream = client.stream(prompt=PROMPT, tier="standard")
        async for _ in stream:
            pass

    await run_async(one, 64, 1)
    streaming._Pipe.put = put  # type: ignore[method-assign]
    streaming._Pipe._wake = wake  # type: ignore[method-assign]
    try:
        for concurrency in (1, 32):
            counts.update(puts=0, wakeups=0)
            await run_async(one, streams, concurrency)
            print(
                f"c={concurrency}: {counts['puts'] / streams:.1f} items and "
                f"{counts['wakeups'] / streams:.1f} wake-ups of the caller's loop per stream"
            )
    finally:
        streaming._Pipe.put = original_put  # type: ignore[method-assign]
        streaming._Pipe._wake = original_wake  # type: ignore[method-assign]

    loop = asyncio.get_running_loop()
    n = 20_000
    done = asyncio.Event()
    cpu0 = time.process_time()

    def poke() -> None:
        for i in range(n):
            loop.call_soon_threadsafe(done.set if i == n - 1 else _noop)
            time.sleep(0)

    thread = threading.Thread(target=poke)
    thread.start()
    await done.wait()
    thread.join()
    print(f"one cross-thread wake-up: {(time.process_time() - cpu0) / n * 1e6:.1f} µs process CPU")


def _noop() -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    with fake_server() as server:
        asyncio.run(measure(args.streams, server.base))


if __name__ == "__main__":
    main()
