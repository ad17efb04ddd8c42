"""Which LiteLLM settings remove per-call work: bare ``litellm.acompletion`` A/B, interleaved.

Run::

    uv run python bench/litellm_settings.py [--calls 64] [--rounds 20]

Each variant is bare LiteLLM (non-streamed and streamed with ``include_usage``) against the
loopback fake server (``bench/fake_openai.py``), with one setting changed; the variants run
interleaved in rounds (order rotating) and each is reported as the median of its per-round
CPU ratio to the unchanged ``default`` window of the same round. Global settings are set at the
start of their window and restored after it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench_generate import FakeServer, fake_server, run_async

MODEL = "openai/gpt-4o-mini"


@contextmanager
def setting(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextmanager
def nothing() -> Iterator[None]:
    yield


async def main_async(args: argparse.Namespace, server: FakeServer) -> None:
    import litellm
    import openai

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    messages = [{"role": "user", "content": "Say hello in five words."}]
    base: dict[str, Any] = {
        "model": MODEL,
        "messages": messages,
        "api_base": server.base,
        "api_key": "bench",
        "num_retries": 0,
        "max_retries": 0,
        "max_tokens": 4096,
        "temperature": 0.7,
        "timeout": 60.0,
    }
    shared = openai.AsyncOpenAI(base_url=server.base, api_key="bench", max_retries=0, timeout=60.0)

    def call(extra: dict[str, Any], stream: bool) -> Callable[[], Any]:
        kwargs = {**base, **extra}
        if stream:
            kwargs.update(stream=True, stream_options={"include_usage": True})

            async def streamed() -> None:
                s = await litellm.acompletion(**kwargs)
                async for _ in s:
                    pass

            return streamed

        async def plain() -> None:
            await litellm.acompletion(**kwargs)

        return plain

    variants: dict[str, tuple[dict[str, Any], Callable[[], Any]]] = {
        "default": ({}, nothing),
        "no-log kwarg": ({"no-log": True}, nothing),
        "client= shared AsyncOpenAI": ({"client": shared}, nothing),
        "disable_streaming_logging": (
            {},
            lambda: setting(litellm, "disable_streaming_logging", True),
        ),
        "disable_token_counter": ({}, lambda: setting(litellm, "disable_token_counter", True)),
        "turn_off_message_logging": (
            {},
            lambda: setting(litellm, "turn_off_message_logging", True),
        ),
    }
    configs = [(name, stream) for name in variants for stream in (False, True)]
    runs = {(name, stream): call(variants[name][0], stream) for name, stream in configs}
    for key in configs:  # warm-up
        with variants[key[0]][1]():
            await run_async(runs[key], args.warmup, 1)
    cpu: dict[tuple[str, bool], list[float]] = {k: [] for k in configs}
    for r in range(args.rounds):
        order = configs[r % len(configs) :] + configs[: r % len(configs)]
        for key in order:
            with variants[key[0]][1]():
                gc.collect()
                await asyncio.sleep(args.settle)
                c0 = time.process_time()
                await run_async(runs[key], args.calls, 1)
                await asyncio.sleep(args.settle)
                cpu[key].append((time.process_time() - c0) / args.calls * 1e3)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    print(
        "\n| variant | streamed | CPU ms/call (median) "
        "| paired ratio to default: median (min-max) |"
    )
    print("|---|---|---:|---:|")
    for name, stream in configs:
        ratios = [a / b for a, b in zip(cpu[(name, stream)], cpu[("default", stream)], strict=True)]
        print(
            f"| {name} | {'yes' if stream else 'no'} "
            f"| {statistics.median(cpu[(name, stream)]):.2f} "
            f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--settle", type=float, default=0.05)
    args = parser.parse_args()
    with fake_server() as server:
        asyncio.run(main_async(args, server))


if __name__ == "__main__":
    main()
