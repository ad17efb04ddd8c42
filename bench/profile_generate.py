"""Where ``generate()`` spends CPU beyond bare LiteLLM: a per-thread CPU profile, A/B experiments.

Run::

    uv run python bench/profile_generate.py [--profile-calls P] [--calls N] [--rounds R]

1. **Profile.** cProfile with a per-thread CPU clock (``time.thread_time``) on the caller's thread
   and on the library's loop thread, for P calls of bare LiteLLM and P calls of ``generate()`` at
   concurrency 1. Prints own CPU per call grouped by package (bare vs generate: the difference is
   what our layer adds) and our own functions. Profiling inflates small functions: read the
   numbers as shares, and the experiments below as the real costs.
2. **Experiments.** Each proposed change is emulated by a monkeypatch and measured the way
   ``bench_generate.py`` measures (process CPU per call, rounds interleaved, medians), next to
   unpatched ``generate()`` and bare LiteLLM. Nothing in ``src/`` is changed.
3. **Our layer alone.** ``generate()`` with ``_litellm.complete`` stubbed to answer at once, so
   only our own CPU per call remains (deterministic, no network noise), with the same patches,
   and the bare cost of the thread hop to the library's loop.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import pstats
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

# Run as a script, this directory is on sys.path, so the sibling benchmark is importable.
from bench_generate import (
    FakeServer,
    Stacks,
    fake_server,
    measure,
    run_async,
)

GROUPS = (
    ("creative_services", "/creative_services/"),
    ("tenacity", "/tenacity/"),
    ("structlog", "/structlog/"),
    ("litellm", "/litellm/"),
    ("openai", "/openai/"),
    ("httpx/httpcore", "/httpx/"),
    ("aiohttp", "/aiohttp/"),
    ("pydantic", "/pydantic"),
    ("asyncio", "/asyncio/"),
    ("concurrent/threading", "/concurrent/"),
    ("concurrent/threading", "/threading.py"),
    ("inspect", "/inspect.py"),
)


def _group(filename: str) -> str:
    for name, marker in GROUPS:
        if marker in filename:
            return name
    return "builtins" if filename == "~" else "other"


# --- 1. profile ----------------------------------------------------------------------------------


async def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    async def call() -> None:
        fn()

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))


async def profile(stacks: Stacks, calls: int) -> dict[str, pstats.Stats]:
    from creative_services import _sync

    loop = _sync.get_loop()
    bare = cProfile.Profile(time.thread_time)
    bare.enable()
    await run_async(stacks.bare, calls, 1)
    bare.disable()
    main, background = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)
    await _on_loop(loop, background.enable)
    main.enable()
    await run_async(stacks.generate, calls, 1)
    main.disable()
    await _on_loop(loop, background.disable)
    return {
        "bare": pstats.Stats(bare),
        "generate (caller thread)": pstats.Stats(main),
        "generate (loop thread)": pstats.Stats(background),
    }


def report_profile(stats: dict[str, pstats.Stats], calls: int) -> None:
    per_call = 1e3 / calls
    by_group: dict[str, dict[str, float]] = {}
    for label, st in stats.items():
        groups: dict[str, float] = defaultdict(float)
        for (filename, _, _), row in st.stats.items():  # type: ignore[attr-defined]
            groups[_group(filename)] += row[2] * per_call
        by_group[label] = groups
    labels = list(stats)
    names = sorted({g for groups in by_group.values() for g in groups})
    gen = {n: sum(by_group[lb].get(n, 0.0) for lb in labels[1:]) for n in names}
    print("\nOwn CPU per call by package, profiled (ms; profiling inflates these)")
    print(f"{'package':<22}{'bare':>9}{'generate':>10}{'diff':>9}")
    for n in sorted(names, key=lambda n: -(gen[n] - by_group["bare"].get(n, 0.0))):
        bare = by_group["bare"].get(n, 0.0)
        print(f"{n:<22}{bare:>9.3f}{gen[n]:>10.3f}{gen[n] - bare:>+9.3f}")
    total_bare = sum(by_group["bare"].values())
    total_gen = sum(gen.values())
    print(f"{'total':<22}{total_bare:>9.3f}{total_gen:>10.3f}{total_gen - total_bare:>+9.3f}")

    print("\nOur functions, both threads (ms per call: own, cumulative)")
    rows: list[tuple[float, float, str]] = []
    for label in labels[1:]:
        for (filename, line, name), row in stats[label].stats.items():  # type: ignore[attr-defined]
            if "/creative_services/" in filename:
                where = f"{filename.split('/creative_services/')[-1]}:{line} {name}"
                rows.append((row[2] * per_call, row[3] * per_call, where))
    for own, cum, where in sorted(rows, reverse=True)[:15]:
        print(f"  {own:7.3f} {cum:7.3f}  {where}")


# --- 2. experiments ------------------------------------------------------------------------------


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def per_call_timeout() -> AbstractContextManager[None]:
    """The old behaviour: a different LiteLLM ``timeout`` on every call (the remaining budget)."""
    from creative_services import _litellm

    complete = _litellm.complete

    async def varying(kwargs: dict[str, Any], *args: Any) -> Any:
        return await complete({**kwargs, "timeout": 60.0 - time.monotonic() % 1.0}, *args)

    return patched(_litellm, "complete", varying)


def caller_loop() -> AbstractContextManager[None]:
    """No thread hop: run the call on the caller's loop (measures the hop; not a proposal)."""
    from creative_services import _sync

    async def direct(coro: Any) -> Any:
        return await coro

    return patched(_sync, "run_async", direct)


@contextmanager
def _both(*patches: Callable[[], AbstractContextManager[None]]) -> Iterator[None]:
    with ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch())
        yield


EXPERIMENTS: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "caller_loop (no hop)": caller_loop,
}


async def _run_calls(call: Callable[[], Awaitable[object]], n: int, *, concurrency: int) -> None:
    await run_async(call, n, concurrency)


async def experiments(
    stacks: Stacks,
    server: FakeServer,
    calls: int,
    rounds: int,
    settle: float,
    old_bug: bool,
    concurrency: int,
) -> dict[str, list[float]]:
    configs: dict[str, Callable[[], AbstractContextManager[None]] | None] = {
        "litellm (bare)": None,
        "generate": None,
        **EXPERIMENTS,
    }
    if old_bug:
        configs["per_call_timeout (old bug)"] = per_call_timeout
    results: dict[str, list[float]] = {name: [] for name in configs}
    names = list(configs)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            call = stacks.bare if name == "litellm (bare)" else stacks.generate
            patch = configs[name]
            with patch() if patch is not None else ExitStack():
                sample = await measure(
                    functools.partial(_run_calls, call, concurrency=concurrency),
                    calls,
                    server,
                    settle,
                )
            results[name].append(sample.cpu_ms)
        print(f"experiments: round {r + 1}/{rounds} done", flush=True)
    return results


def report_experiments(results: dict[str, list[float]], concurrency: int) -> None:
    bare = results["litellm (bare)"]
    base = results["generate"]
    print(f"\nExperiments at concurrency {concurrency}: process CPU ms/call over rounds")
    print("(paired = per-round difference to unpatched generate in the same round, then median)")
    print(f"{'variant':<28}{'median':>8}{'min':>7}{'max':>7}{'x bare':>8}{'paired diff':>13}")
    for name, values in results.items():
        med = statistics.median(values)
        ratio = statistics.median(v / b for v, b in zip(values, bare, strict=True))
        paired = statistics.median(v - g for v, g in zip(values, base, strict=True))
        print(
            f"{name:<28}{med:>8.3f}{min(values):>7.2f}{max(values):>7.2f}"
            f"{ratio:>8.3f}{paired:>+13.3f}"
        )


# --- 3. our layer alone ---------------------------------------------------------------------------


def stub_provider() -> AbstractContextManager[None]:
    """``_litellm.complete`` answers at once with a canned result: only our layer remains."""
    from creative_services import _litellm
    from creative_services.types import Usage

    result = _litellm.ProviderResult(
        content="Hello from the stub.",
        model="gpt-4o-mini-2024-07-18",
        finish_reason="stop",
        usage=Usage(prompt_tokens=12, completion_tokens=7),
        provider_cost=None,
        tool_calls=(),
    )

    async def complete(*_args: Any) -> Any:
        return result

    return patched(_litellm, "complete", complete)


async def _noop() -> None:
    return None


async def micro(stacks: Stacks, calls: int, repeats: int) -> dict[str, list[float]]:
    """CPU ms per call of our layer with LiteLLM stubbed out, and of its parts."""
    from creative_services import _sync

    async def hop_async(n: int) -> None:
        for _ in range(n):
            await _sync.run_async(_noop())

    async def hop_sync(n: int) -> None:
        def worker() -> None:
            for _ in range(n):
                _sync.run_sync(_noop())

        await asyncio.to_thread(worker)

    async def gen(n: int) -> None:
        await run_async(stacks.generate, n, 1)

    async def gen32(n: int) -> None:
        await run_async(stacks.generate, n, 32)

    async def gen_sync(n: int) -> None:
        def worker() -> None:
            for _ in range(n):
                stacks.generate_sync()

        await asyncio.to_thread(worker)

    variants: dict[str, tuple[Callable[[int], Awaitable[None]], list[Any]]] = {
        "thread hop: run_async(noop)": (hop_async, []),
        "thread hop: run_sync(noop) from a thread": (hop_sync, []),
        "generate, provider stubbed": (gen, [stub_provider]),
        "  + caller_loop (no hop)": (gen, [stub_provider, caller_loop]),
        "generate_sync, provider stubbed": (gen_sync, [stub_provider]),
        "generate c=32, provider stubbed": (gen32, [stub_provider]),
        "  + caller_loop (no hop) ": (gen32, [stub_provider, caller_loop]),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (fn, patches) in variants.items():
            with _both(*patches):
                await fn(calls // 10)  # warm this variant's path
                gc.collect()
                start = time.process_time()
                await fn(calls)
                results[name].append((time.process_time() - start) / calls * 1e3)
    return results


def report_micro(results: dict[str, list[float]]) -> None:
    print(
        "\nOur layer alone (LiteLLM stubbed out): process CPU ms/call (concurrency 1 unless said)"
    )
    print(f"{'variant':<44}{'min':>8}{'median':>8}")
    for name, values in results.items():
        print(f"{name:<44}{min(values):>8.3f}{statistics.median(values):>8.3f}")


async def run(args: argparse.Namespace, server: FakeServer) -> None:
    import logging

    from bench_generate import _LoopSwitchNoise

    logging.getLogger("asyncio").addFilter(_LoopSwitchNoise())
    stacks = Stacks(server.base)
    for call in (stacks.bare, stacks.generate):
        await run_async(call, args.warmup, 1)
    if args.micro_calls:
        report_micro(await micro(stacks, args.micro_calls, args.micro_repeats))
    if args.profile_calls:
        report_profile(await profile(stacks, args.profile_calls), args.profile_calls)
    if args.rounds:
        results = await experiments(
            stacks,
            server,
            args.calls,
            args.rounds,
            args.settle,
            args.old_timeout_bug,
            args.concurrency,
        )
        report_experiments(results, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro-calls", type=int, default=2000, help="0 skips 'our layer alone'")
    parser.add_argument("--micro-repeats", type=int, default=5)
    parser.add_argument("--profile-calls", type=int, default=300, help="0 skips the profile")
    parser.add_argument("--calls", type=int, default=64, help="calls per experiment window")
    parser.add_argument("--rounds", type=int, default=40, help="0 skips the experiments")
    parser.add_argument("--concurrency", type=int, default=1, help="of the experiments")
    parser.add_argument("--warmup", type=int, default=64)
    parser.add_argument("--settle", type=float, default=0.05)
    parser.add_argument(
        "--old-timeout-bug",
        action="store_true",
        help="also emulate a per-call LiteLLM timeout (a new client per call; the cached clients "
        "pile up and slow every later window, so read the other rows with care)",
    )
    args = parser.parse_args()
    with fake_server() as server:
        asyncio.run(run(args, server))


if __name__ == "__main__":
    main()
