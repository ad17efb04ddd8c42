"""Where bare LiteLLM spends its CPU per call, and what ``_litellm.load()``'s cost hook removes.

Run::

    uv run python bench/profile_litellm.py [--calls 300]

cProfile (wall clock of the benchmark's one thread, so read the numbers as shares) over ``--calls``
``litellm.acompletion`` calls against the loopback fake server (``bench/fake_openai.py``), for four
cases: non-streamed and streamed (30 chunks, ``include_usage``), each with LiteLLM's defaults and
with the keyword arguments ``_litellm.build_kwargs`` makes (our ``litellm_call_id``, which the
hook installed by ``_litellm.load()`` recognises). ``litellm.stream_chunk_builder`` runs in a
worker thread (``asyncify``), out of cProfile's sight: it is timed with ``time.thread_time``.
Prints a Markdown table of the main phases' cumulative time per call.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench_generate import fake_server

PHASES = (
    ("whole call (`acompletion` + iteration)", "bench", "one"),
    ("`openai` SDK request: build, send, parse", "openai/_base_client.py", "request"),
    ("cost: `Logging.response_cost_calculator`", "litellm_logging.py", "response_cost_calculator"),
    (
        "success logging: `Logging.async_success_handler`",
        "litellm_logging.py",
        "async_success_handler",
    ),
    (
        "  of which the standard logging payload",
        "litellm_logging.py",
        "_build_standard_logging_payload",
    ),
    ("stream: `CustomStreamWrapper.chunk_creator`", "streaming_handler.py", "chunk_creator"),
)


async def run(args: argparse.Namespace, base: str) -> None:
    from creative_services import _litellm

    litellm = _litellm.load()
    builder = litellm.stream_chunk_builder
    spent = {"builder": 0.0}

    def timed_builder(*a: Any, **kw: Any) -> Any:
        t0 = time.thread_time()
        try:
            return builder(*a, **kw)
        finally:
            spent["builder"] += time.thread_time() - t0

    litellm.stream_chunk_builder = timed_builder
    messages = [{"role": "user", "content": "Say hello in five words."}]
    kwargs = {
        "model": "openai/gpt-4o-mini",
        "messages": messages,
        "api_base": base,
        "api_key": "bench",
        "num_retries": 0,
        "max_retries": 0,
        "max_tokens": 4096,
        "temperature": 0.7,
        "timeout": 60.0,
    }
    rows: dict[str, dict[str, float]] = {}
    for streamed in (False, True):
        for ours in (False, True):

            async def one(streamed: bool = streamed, ours: bool = ours) -> None:
                extra: dict[str, Any] = {}
                if ours:
                    extra["litellm_call_id"] = "creative-services-" + os.urandom(16).hex()
                if streamed:
                    extra.update(stream=True, stream_options={"include_usage": True})
                    async for _ in await litellm.acompletion(**kwargs, **extra):
                        pass
                else:
                    await litellm.acompletion(**kwargs, **extra)

            for _ in range(30):
                await one()
            await asyncio.sleep(0.3)
            spent["builder"] = 0.0
            profile = cProfile.Profile()
            cpu0 = time.process_time()
            profile.enable()
            for _ in range(args.calls):
                await one()
            await asyncio.sleep(0.3)  # the logging worker finishes this batch's handlers
            profile.disable()
            cpu = (time.process_time() - cpu0) / args.calls * 1e3
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            row: dict[str, float] = {"process CPU ms/call (profiled)": cpu}
            for label, file_part, func in PHASES:
                total = sum(
                    value[3]
                    for (filename, _, name), value in stats.items()
                    if name == func and (file_part == "bench" or file_part in filename)
                )
                row[label] = total / args.calls * 1e3
            row["stream: `stream_chunk_builder` (worker thread, thread CPU)"] = (
                spent["builder"] / args.calls * 1e3
            )
            rows[
                f"{'streamed' if streamed else 'non-streamed'}, {'ours' if ours else 'defaults'}"
            ] = row
    names = list(rows)
    print("| phase, ms per call | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for label in rows[names[0]]:
        print(f"| {label} | " + " | ".join(f"{rows[n][label]:.2f}" for n in names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with fake_server() as server:
        asyncio.run(run(args, server.base))


if __name__ == "__main__":
    main()
