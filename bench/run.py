"""The benchmark harness: every stack against one loopback fake provider, and the targets.

Run (one command; PostgreSQL on 127.0.0.1:5432, database ``test``, user ``postgres``, trust auth,
for the Django rows; ``--no-django`` skips them)::

    uv run python bench/run.py

It writes ``bench/RESULTS.md`` (everything above the notes marker; the hand-written notes below
it are kept) and ``bench/results.json``. Phases, in this order:

1. **Import** in fresh interpreters (bytecode cached in a temporary ``PYTHONPYCACHEPREFIX``, as
   an installed wheel has it): ``import creative_services``, ``from creative_services.adapters
   import BFAgentLLMBridge``, ``import litellm``, ``import openai``; wall time minus ``python -c
   pass``, time of the import statement itself, RSS after it, and whether any ``litellm`` module
   was loaded.
2. **Calls.** ``bench/fake_openai.py`` runs in a separate process (its CPU is not counted); in
   this process every stack runs interleaved, round after round, order rotating, each window
   ``--calls`` calls at concurrency 1 or 32 (32 tasks on one event loop; the sync stacks run in a
   worker thread at concurrency 1). CPU = ``time.process_time()`` of the whole process (all
   threads: the library's loop thread, LiteLLM's logging work, the Django tracker's writer) per
   call, including ``--settle`` seconds after the last answer so deferred work is charged to the
   stack that caused it. Verdicts use the median of per-round paired ratios (both windows ran
   seconds apart on the same, noisy machine).

   Non-streamed: raw aiohttp POST (the floor), the ``openai`` SDK, bare ``litellm.acompletion``,
   LiteLLM ``Router``, ``DynamicLLMClient.generate`` (in-memory tracker), ``generate`` over
   ``DjangoLLMRegistry`` + batched ``DjangoUsageTracker`` on PostgreSQL, the OpenAI drop-in
   (``creative_services.openai_compat.AsyncOpenAI``); in a thread: ``generate_sync``, the sync
   bridge ``BFAgentLLMBridge.generate_text``, the sync drop-in ``OpenAI``.
   Streamed (30 content chunks + usage): raw httpx streaming (each SSE event parsed), the SDK
   with ``stream=True``, ``litellm.acompletion(stream=True, stream_options={"include_usage":
   True})``, ``client.stream()``.

   LiteLLM's module-wide settings that ``creative_services._litellm.load()`` changes (other than
   the quiet ones both sides use) are switched per window: LiteLLM's own defaults for the bare
   LiteLLM and Router windows, the library's for its own windows.
3. **Django**: SQL statements per call (``CaptureQueriesContext`` on the caller's thread over
   ``generate_sync`` calls, plus a per-thread count of every statement during async
   ``generate()`` calls), then the batched tracker's throughput and ``record()`` latency
   (``bench/bench_django_tracker.py``'s measurement, in a scratch database dropped at the end).
4. **Memory**: ``--memory-calls`` ``generate()`` calls at concurrency 32 after a warm-up; RSS,
   live object count (after ``gc.collect()``) and LiteLLM's client cache, at five points.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# A round is longer than LiteLLM's 15 s aiohttp keep-alive: without this every stack would reopen
# its connections at each window. Every client here keeps its idle connections for 5 minutes,
# the steady state of a busy application.
os.environ.setdefault("AIOHTTP_KEEPALIVE_TIMEOUT", "300")
KEEPALIVE_S = 300.0

from bench_generate import (  # noqa: E402  (this directory is on sys.path when run as a script)
    NOTES_MARKER,
    FakeServer,
    Sample,
    _import_env,
    _LoopSwitchNoise,
    fake_server,
    machine,
    measure,
    run_async,
    run_in_thread,
    spread,
)

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"

MODEL = "gpt-4o-mini"
PROMPT = "Say hello in five words."
MAX_TOKENS = 4096
TEMPERATURE = 0.7
TIMEOUT = 60.0
RATIO_TARGET = 1.05
DROP_IN_TARGET = 1.3
"""The drop-in runs the openai SDK itself (requests, parsing) on top of ``generate()``."""
BRIDGE_TARGET_MS = 0.2
IMPORT_TARGET_MS = 60.0
RATE_TARGET = 5_000.0
P99_TARGET_US = 50.0
NEUTRAL_SETTINGS = {"suppress_debug_info", "telemetry", "num_retries"}
"""Quiet settings the bare stacks use as well: they change no work on a successful call."""

IMPORTS = {
    "import creative_services": "import creative_services",
    "from creative_services.adapters import BFAgentLLMBridge": (
        "from creative_services.adapters import BFAgentLLMBridge"
    ),
    "import litellm": "import litellm",
    "import openai": "import openai",
}
OURS_IMPORTS = tuple(IMPORTS)[:2]
CHILD = """
import time
t0 = time.perf_counter()
{code}
t1 = time.perf_counter()
import json, sys
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]
print(json.dumps({{"ms": (t1 - t0) * 1e3, "rss_kb": int(rss),
    "litellm": sum(m.split(".")[0] == "litellm" for m in sys.modules)}}))
"""


# --- configurations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    stack: str
    concurrency: int
    streamed: bool = False
    threaded: bool = False
    ours: bool = False
    django: bool = False

    @property
    def key(self) -> str:
        return f"{self.stack}@c{self.concurrency}"


def configs(django: bool) -> list[Config]:
    out: list[Config] = []
    for c in (1, 32):
        out += [
            Config("aiohttp", c),
            Config("openai", c),
            Config("litellm", c),
            Config("router", c),
            Config("generate", c, ours=True),
        ]
        if django:
            out.append(Config("generate_django", c, ours=True, django=True))
        out.append(Config("compat_async", c, ours=True))
        if c == 1:
            out += [
                Config("generate_sync", 1, threaded=True, ours=True),
                Config("bridge", 1, threaded=True, ours=True),
                Config("compat_sync", 1, threaded=True, ours=True),
            ]
        out += [
            Config("httpx_stream", c, streamed=True),
            Config("openai_stream", c, streamed=True),
            Config("litellm_stream", c, streamed=True),
            Config("client_stream", c, streamed=True, ours=True),
            Config("compat_stream", c, streamed=True, ours=True),
        ]
    return out


# --- LiteLLM settings: the library's vs LiteLLM's defaults ---------------------------------------


def _simple(value: object) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


class Settings:
    """The module-wide LiteLLM settings ``_litellm.load()`` changes, switchable per window."""

    def __init__(self) -> None:
        import litellm

        litellm.response_cost_calculator  # noqa: B018  (resolve the lazy attribute first)
        before = {k: v for k, v in vars(litellm).items() if not k.startswith("__")}
        from creative_services import _litellm

        _litellm.load()
        after = vars(litellm)

        def differs(old: object, new: object) -> bool:
            return old != new if _simple(old) and _simple(new) else old is not new

        changed = {k for k, v in before.items() if k in after and differs(v, after[k])}
        self.module = litellm
        self.switched = sorted(changed - NEUTRAL_SETTINGS)
        self.neutral = sorted(changed & NEUTRAL_SETTINGS)
        self.defaults = {k: before[k] for k in self.switched}
        self.ours = {k: after[k] for k in self.switched}

    def apply(self, ours: bool) -> None:
        for name, value in (self.ours if ours else self.defaults).items():
            setattr(self.module, name, value)

    def describe(self) -> dict[str, Any]:
        def show(value: object) -> object:
            return (
                value
                if _simple(value)
                else f"{getattr(value, '__module__', '?')}."
                f"{getattr(value, '__qualname__', type(value).__name__)}"
            )

        return {
            "switched": {
                k: {"litellm": show(self.defaults[k]), "ours": show(self.ours[k])}
                for k in self.switched
            },
            "neutral_both_sides": {k: getattr(self.module, k) for k in self.neutral},
        }


# --- the stacks ----------------------------------------------------------------------------------


def _entry(base: str) -> Any:
    from creative_services import LLMEntry, Secret

    return LLMEntry(
        name="bench-openai",
        provider="openai",
        model_name=MODEL,
        api_endpoint=base,
        api_key=Secret("bench"),
        cost_per_1k_input=Decimal("0.00015"),
        cost_per_1k_output=Decimal("0.0006"),
        max_tokens=MAX_TOKENS,
        temperature=TEMPERATURE,
    )


class Stacks:
    """One callable per stack; async ones are awaited on the benchmark's loop."""

    def __init__(self, base: str, django: DjangoSide | None) -> None:
        import openai

        from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker
        from creative_services.adapters import BFAgentLLMBridge
        from creative_services.openai_compat import AsyncOpenAI as CompatAsync
        from creative_services.openai_compat import OpenAI as CompatSync

        self.settings = Settings()
        self.litellm = self.settings.module
        self.base = base
        self.messages = [{"role": "user", "content": PROMPT}]
        self.body = {
            "model": MODEL,
            "messages": self.messages,
            "max_tokens": MAX_TOKENS,
            "temperature": TEMPERATURE,
        }
        self.stream_body = {**self.body, "stream": True, "stream_options": {"include_usage": True}}
        self.litellm_kwargs = {
            "model": f"openai/{MODEL}",
            "messages": self.messages,
            "api_base": base,
            "api_key": "bench",
            "num_retries": 0,
            "max_retries": 0,
            "max_tokens": MAX_TOKENS,
            "temperature": TEMPERATURE,
            "timeout": TIMEOUT,
        }
        self.router = self.litellm.Router(
            model_list=[
                {
                    "model_name": "bench",
                    "litellm_params": {
                        "model": f"openai/{MODEL}",
                        "api_base": base,
                        "api_key": "bench",
                        "max_retries": 0,
                        "timeout": TIMEOUT,
                    },
                }
            ],
            num_retries=0,
        )
        import httpx

        self.sdk = openai.AsyncOpenAI(
            base_url=base,
            api_key="bench",
            max_retries=0,
            timeout=TIMEOUT,
            http_client=openai.DefaultAsyncHttpxClient(
                limits=httpx.Limits(
                    max_connections=1000,
                    max_keepalive_connections=100,
                    keepalive_expiry=KEEPALIVE_S,
                )
            ),
        )
        registry = DictRegistry([_entry(base)])
        self.tracker = InMemoryUsageTracker()
        self.client = DynamicLLMClient(registry, tracker=self.tracker)
        self.bridge = BFAgentLLMBridge(registry, tracker=InMemoryUsageTracker())
        self.compat_async = CompatAsync(registry, tracker=InMemoryUsageTracker())
        self.compat_sync = CompatSync(registry, tracker=InMemoryUsageTracker())
        self.django = django
        self._aiohttp: Any = None
        self._httpx: Any = None

    async def open(self) -> None:
        import aiohttp
        import httpx

        self._aiohttp = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=KEEPALIVE_S),
            headers={"Authorization": "Bearer bench"},
        )
        self._httpx = httpx.AsyncClient(
            headers={"Authorization": "Bearer bench"},
            timeout=TIMEOUT,
            limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_S
            ),
        )

    async def close(self) -> None:
        await self._aiohttp.close()
        await self._httpx.aclose()
        await self.sdk.close()

    # non-streamed
    async def aiohttp(self) -> None:
        async with self._aiohttp.post(f"{self.base}/chat/completions", json=self.body) as r:
            data = await r.json()
        assert data["choices"][0]["message"]["content"]

    async def openai(self) -> None:
        r = await self.sdk.chat.completions.create(**self.body)
        assert r.choices[0].message.content

    async def bare(self) -> None:
        r = await self.litellm.acompletion(**self.litellm_kwargs)
        assert r.choices[0].message.content

    async def routed(self) -> None:
        r = await self.router.acompletion(
            model="bench", messages=self.messages, max_tokens=MAX_TOKENS, temperature=TEMPERATURE
        )
        assert r.choices[0].message.content

    async def generate(self) -> None:
        r = await self.client.generate(prompt=PROMPT, tier="standard")
        assert r.content
        assert r.cost is not None

    async def generate_django(self) -> None:
        assert self.django is not None
        r = await self.django.client.generate(prompt=PROMPT, tier="standard")
        assert r.content
        assert r.cost is not None

    async def compat(self) -> None:
        r = await self.compat_async.chat.completions.create(
            model="standard", messages=self.messages
        )
        assert r.choices[0].message.content

    def generate_sync(self) -> None:
        assert self.client.generate_sync(prompt=PROMPT, tier="standard").content

    def bridged(self) -> None:
        assert self.bridge.generate_text(prompt=PROMPT, tier="standard")

    def compat_blocking(self) -> None:
        r = self.compat_sync.chat.completions.create(model="standard", messages=self.messages)
        assert r.choices[0].message.content

    # streamed
    async def httpx_stream(self) -> None:
        parts = []
        async with self._httpx.stream(
            "POST", f"{self.base}/chat/completions", json=self.stream_body
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    event = json.loads(line[6:])
                    if event["choices"] and event["choices"][0]["delta"].get("content"):
                        parts.append(event["choices"][0]["delta"]["content"])
        assert parts

    async def openai_stream(self) -> None:
        parts, usage = [], None
        async for chunk in await self.sdk.chat.completions.create(**self.stream_body):
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        assert parts
        assert usage is not None

    async def litellm_stream(self) -> None:
        parts, usage = [], None
        stream = await self.litellm.acompletion(
            **self.litellm_kwargs, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        assert parts
        assert usage is not None

    async def client_stream(self) -> None:
        stream = self.client.stream(prompt=PROMPT, tier="standard")
        parts = [text async for text in stream]
        assert parts
        assert stream.response.usage.completion_tokens == 30

    async def compat_stream(self) -> None:
        parts, usage = [], None
        stream = await self.compat_async.chat.completions.create(
            model="standard",
            messages=self.messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        assert parts
        assert usage is not None

    def runner(self, config: Config) -> Callable[[int], Awaitable[None]]:
        async_calls: dict[str, Callable[[], Awaitable[None]]] = {
            "aiohttp": self.aiohttp,
            "openai": self.openai,
            "litellm": self.bare,
            "router": self.routed,
            "generate": self.generate,
            "generate_django": self.generate_django,
            "compat_async": self.compat,
            "httpx_stream": self.httpx_stream,
            "openai_stream": self.openai_stream,
            "litellm_stream": self.litellm_stream,
            "client_stream": self.client_stream,
            "compat_stream": self.compat_stream,
        }
        sync_calls: dict[str, Callable[[], None]] = {
            "generate_sync": self.generate_sync,
            "bridge": self.bridged,
            "compat_sync": self.compat_blocking,
        }
        settings = self.settings
        if config.threaded:
            call = sync_calls[config.stack]

            async def run_sync(n: int) -> None:
                settings.apply(ours=True)
                await run_in_thread(call, n)

            return run_sync
        acall = async_calls[config.stack]

        async def run(n: int) -> None:
            settings.apply(ours=config.ours)
            await run_async(acall, n, config.concurrency)

        return run


# --- Django --------------------------------------------------------------------------------------


class DjangoSide:
    """A scratch PostgreSQL database with one registry row; a client over the Django adapter."""

    def __init__(self, base: str) -> None:
        from bench_django_tracker import setup_django

        setup_django()
        from django.db import connection

        from creative_services import DynamicLLMClient
        from creative_services.contrib.django.models import LLMModel
        from creative_services.contrib.django.registry import DjangoLLMRegistry
        from creative_services.contrib.django.tracking import DjangoUsageTracker

        self.connection = connection
        self.old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            self.pg_version = cursor.fetchone()[0].split(" on ")[0]
        LLMModel.objects.create(
            name="bench-openai",
            provider="openai",
            model_name=MODEL,
            tier="standard",
            api_key="bench",
            api_endpoint=base,
            max_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
            cost_per_1k_input=Decimal("0.00015"),
            cost_per_1k_output=Decimal("0.0006"),
        )
        self.registry = DjangoLLMRegistry()
        self.registry.refresh()
        self.tracker = DjangoUsageTracker(batch=True)
        self.client = DynamicLLMClient(self.registry, tracker=self.tracker)

    def close(self) -> None:
        from creative_services.contrib.django.registry import stop_registry_watcher

        self.tracker.flush(60)
        self.tracker.close()
        stop_registry_watcher()
        self.connection.close()
        self.connection.creation.destroy_test_db(self.old_name, verbosity=0)


@contextmanager
def statement_counter() -> Iterator[collections.Counter[str]]:
    """Counts every SQL statement Django runs, by thread name (all connections, all threads)."""
    from django.db.backends.utils import CursorWrapper

    counts: collections.Counter[str] = collections.Counter()
    original_execute, original_many = CursorWrapper.execute, CursorWrapper.executemany

    def execute(self: Any, sql: Any, params: Any = None) -> Any:
        counts[threading.current_thread().name] += 1
        return original_execute(self, sql, params)

    def executemany(self: Any, sql: Any, param_list: Any) -> Any:
        counts[threading.current_thread().name] += 1
        return original_many(self, sql, param_list)

    CursorWrapper.execute, CursorWrapper.executemany = execute, executemany  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        CursorWrapper.execute, CursorWrapper.executemany = original_execute, original_many  # type: ignore[method-assign]


def _thread_group(name: str) -> str:
    if name == "MainThread":
        return "caller"
    if name == "creative-services-loop":
        return "library loop"
    return "background (registry watcher, tracker writer)"


def bench_queries(django: DjangoSide, calls: int) -> dict[str, Any]:
    """SQL statements per call: sync calls under CaptureQueriesContext, async calls per thread."""
    from django.test.utils import CaptureQueriesContext

    from creative_services import LLMTier

    for _ in range(20):
        django.client.generate_sync(prompt=PROMPT, tier="standard")
    with statement_counter() as counts:
        with CaptureQueriesContext(django.connection) as captured:
            for _ in range(calls):
                django.client.generate_sync(prompt=PROMPT, tier="standard")
                django.registry.candidates(LLMTier.STANDARD)
                django.registry.get_by_name("bench-openai")
        sync_counts = dict(counts)
        counts.clear()

        async def many() -> None:
            for _ in range(calls):
                await django.client.generate(prompt=PROMPT, tier="standard")

        started = time.perf_counter()
        asyncio.run(many())
        elapsed = time.perf_counter() - started
        async_counts = dict(counts)
    grouped: collections.Counter[str] = collections.Counter()
    for name, n in async_counts.items():
        grouped[_thread_group(name)] += n
    return {
        "calls": calls,
        "sync_caller_queries": len(captured.captured_queries),
        "sync_caller_queries_per_call": len(captured.captured_queries) / calls,
        "sync_statements_by_thread": sync_counts,
        "async_statements_by_thread": dict(grouped),
        "async_seconds": elapsed,
        "registry_queries_per_call": (grouped["caller"] + grouped["library loop"]) / calls,
        "met": len(captured.captured_queries) == 0
        and grouped["caller"] == 0
        and grouped["library loop"] == 0,
    }


def bench_tracker(records: int, rounds: int) -> dict[str, Any]:
    """``bench_django_tracker.py``'s batched and unbatched measurement, in the same database."""
    from bench_django_tracker import median_of, run_batched, run_unbatched

    batched = [run_batched(records, 500, 0.5) for _ in range(rounds)]
    unbatched = run_unbatched(2_000)
    out = {
        key: dict(zip(("median", "min", "max"), median_of(batched, key), strict=True))
        for key in ("rate", "p50_us", "p99_us", "p999_us", "cpu_us_per_record")
    }
    out["unbatched"] = unbatched
    out["records"], out["rounds"] = records, rounds
    out["met"] = out["rate"]["median"] >= RATE_TARGET and out["p99_us"]["median"] <= P99_TARGET_US
    return out


# --- memory --------------------------------------------------------------------------------------


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_memory(base: str, calls: int, warmup: int) -> dict[str, Any]:
    """RSS and live objects over ``calls`` generate() calls at concurrency 32."""
    from creative_services import DictRegistry, DynamicLLMClient, InMemoryUsageTracker

    tracker = InMemoryUsageTracker(max_records=1_000)
    client = DynamicLLMClient(DictRegistry([_entry(base)]), tracker=tracker)
    import litellm

    cache = getattr(litellm, "in_memory_llm_clients_cache", None)

    async def call() -> None:
        assert (await client.generate(prompt=PROMPT, tier="standard")).content

    def point(done: int, types: bool = False) -> dict[str, Any]:
        gc.collect()
        objects = gc.get_objects()
        result: dict[str, Any] = {
            "calls": done,
            "rss_mb": _rss_mb(),
            "objects": len(objects),
            "litellm_client_cache": len(getattr(cache, "cache_dict", {}) or {}),
        }
        if types:
            result["_types"] = collections.Counter(type(o).__name__ for o in objects)
        del objects
        return result

    async def run() -> list[dict[str, Any]]:
        await run_async(call, warmup, 32)
        points = [point(0, types=True)]
        step = calls // 4
        for i in range(4):
            started = time.process_time()
            await run_async(call, step, 32)
            cpu = time.process_time() - started
            points.append(
                {**point(step * (i + 1), types=(i == 3)), "cpu_ms_per_call": cpu / step * 1e3}
            )
            print(
                f"memory: {points[-1]['calls']} calls, RSS {points[-1]['rss_mb']:.1f} MB, "
                f"{points[-1]['objects']} objects",
                flush=True,
            )
        return points

    points = asyncio.run(run())
    first, last = points[0].pop("_types"), points[-1].pop("_types")
    growth = {k: last[k] - first.get(k, 0) for k in last}
    top = sorted(growth.items(), key=lambda kv: -kv[1])[:6]
    return {
        "calls": calls,
        "warmup": warmup,
        "points": points,
        "rss_growth_mb": points[-1]["rss_mb"] - points[0]["rss_mb"],
        "rss_growth_second_half_mb": points[-1]["rss_mb"] - points[2]["rss_mb"],
        "objects_growth": points[-1]["objects"] - points[0]["objects"],
        "top_type_growth": top,
        "records_kept": len(tracker.records),
    }


# --- the call rounds -----------------------------------------------------------------------------


async def bench_calls(
    server: FakeServer,
    stacks: Stacks,
    cfgs: list[Config],
    calls: int,
    rounds: int,
    warmup: int,
    settle: float,
) -> dict[str, Any]:
    import logging

    logging.getLogger("asyncio").addFilter(_LoopSwitchNoise())
    await stacks.open()
    runs = {c.key: stacks.runner(c) for c in cfgs}
    print(f"warming up ({warmup} calls per configuration) ...", flush=True)
    for c in cfgs:
        await runs[c.key](warmup)
    samples: dict[str, list[Sample]] = {c.key: [] for c in cfgs}
    started = time.perf_counter()
    for r in range(rounds):
        order = cfgs[r % len(cfgs) :] + cfgs[: r % len(cfgs)]
        for c in order:
            samples[c.key].append(await measure(runs[c.key], calls, server, settle))
        line = ", ".join(
            f"{k} {samples[k][-1].cpu_ms:.2f}"
            for k in ("litellm@c1", "generate@c1", "litellm_stream@c1", "client_stream@c1")
        )
        print(f"round {r + 1}/{rounds} ({time.perf_counter() - started:.0f} s): {line}", flush=True)
    await stacks.close()
    stacks.settings.apply(ours=True)
    return {
        "configs": {
            key: {
                "cpu_ms": spread([s.cpu_ms for s in values]),
                "wall_ms": spread([s.wall_ms for s in values]),
                "connections_per_call": statistics.median(s.connections for s in values),
                "samples": [asdict(s) for s in values],
            }
            for key, values in samples.items()
        },
        "litellm_logging_worker_rebinds_dropped": _LoopSwitchNoise.dropped,
    }


def paired(results: dict[str, Any], ours: str, base: str, *, diff: bool = False) -> dict[str, Any]:
    a = [s["cpu_ms"] for s in results["configs"][ours]["samples"]]
    b = [s["cpu_ms"] for s in results["configs"][base]["samples"]]
    values = [x - y if diff else x / y for x, y in zip(a, b, strict=True)]
    ma, mb = (
        results["configs"][ours]["cpu_ms"]["median"],
        results["configs"][base]["cpu_ms"]["median"],
    )
    return {"paired": spread(values), "of_medians": ma - mb if diff else ma / mb}


# --- import time ---------------------------------------------------------------------------------


def _child(code: str, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(code=code)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    wall = (time.perf_counter() - started) * 1e3
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def bench_imports(repeats: int, heavy_repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        envs = {"cached": _import_env(pycache), "uncached": _import_env(None)}
        cases = [("cached", "python -c pass", "pass")]
        cases += [("cached", label, code) for label, code in IMPORTS.items()]
        cases += [("uncached", "python -c pass", "pass")]
        cases += [("uncached", label, IMPORTS[label]) for label in OURS_IMPORTS]
        for env, _, code in cases:  # write the bytecode cache, warm the page cache; untimed
            _child(code, envs[env])
        raw: dict[tuple[str, str], list[tuple[float, dict[str, Any]]]] = {
            (e, label): [] for e, label, _ in cases
        }
        for i in range(repeats):
            for env, label, code in cases[i % len(cases) :] + cases[: i % len(cases)]:
                if label in ("import litellm", "import openai") and i >= heavy_repeats:
                    continue
                raw[(env, label)].append(_child(code, envs[env]))
    out: dict[str, Any] = {"repeats": repeats, "heavy_repeats": heavy_repeats}
    for env in envs:
        base_wall = statistics.median(w for w, _ in raw[(env, "python -c pass")])
        base_rss = statistics.median(c["rss_kb"] for _, c in raw[(env, "python -c pass")])
        rows: dict[str, Any] = {
            "python_pass_wall_ms": base_wall,
            "python_pass_rss_mb": base_rss / 1024,
        }
        for (e, label), values in raw.items():
            if e != env or label == "python -c pass":
                continue
            rows[label] = {
                "wall_ms": spread([w for w, _ in values]),
                "net_ms": spread([w - base_wall for w, _ in values]),
                "statement_ms": spread([c["ms"] for _, c in values]),
                "rss_mb": spread([c["rss_kb"] / 1024 for _, c in values]),
                "rss_added_mb": statistics.median(c["rss_kb"] for _, c in values) / 1024
                - base_rss / 1024,
                "litellm_modules": max(c["litellm"] for _, c in values),
            }
        out[env] = rows
    for label in OURS_IMPORTS:
        row = out["cached"][label]
        row["met"] = row["net_ms"]["median"] <= IMPORT_TARGET_MS and row["litellm_modules"] == 0
    out["importtime"] = importtime_profile(IMPORTS[OURS_IMPORTS[1]], repeats)
    return out


def importtime_profile(code: str, repeats: int) -> dict[str, Any]:
    """``python -X importtime``: median self and cumulative ms per module (bytecode cached)."""
    selfs: dict[str, list[float]] = collections.defaultdict(list)
    cums: dict[str, list[float]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        env = _import_env(pycache)
        runs = [
            subprocess.run(
                [sys.executable, "-X", "importtime", "-c", code],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stderr
            for _ in range(repeats + 1)
        ][1:]  # the first run writes the cache
    for err in runs:
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cum_us, name = (p.strip() for p in line[len("import time:") :].split("|"))
            selfs[name].append(int(self_us) / 1e3)
            cums[name].append(int(cum_us) / 1e3)
    rows = {
        name: {
            "self_ms": statistics.median(selfs[name]),
            "cumulative_ms": statistics.median(cums[name]),
        }
        for name in cums
    }
    return {
        "code": code,
        "repeats": repeats,
        "all_self_ms": sum(r["self_ms"] for r in rows.values()),
        "top_cumulative": sorted(rows.items(), key=lambda kv: -kv[1]["cumulative_ms"])[:25],
    }


# --- the report ----------------------------------------------------------------------------------


def _fmt(s: dict[str, float], digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _v(met: bool) -> str:
    return "**met**" if met else "**NOT met**"


LABELS = {
    "aiohttp": "raw aiohttp POST (floor)",
    "openai": "`openai` SDK `AsyncOpenAI`",
    "litellm": "bare `litellm.acompletion`",
    "router": "LiteLLM `Router.acompletion`",
    "generate": "`DynamicLLMClient.generate` (in-memory tracker)",
    "generate_django": (
        "`generate` + `DjangoLLMRegistry` + batched `DjangoUsageTracker` (PostgreSQL)"
    ),
    "compat_async": "drop-in `openai_compat.AsyncOpenAI`",
    "generate_sync": "`generate_sync` (worker thread)",
    "bridge": "sync bridge `BFAgentLLMBridge.generate_text` (worker thread)",
    "compat_sync": "drop-in `openai_compat.OpenAI` (worker thread)",
    "httpx_stream": "raw httpx streaming (SSE parsed)",
    "openai_stream": "`openai` SDK `stream=True`",
    "litellm_stream": "bare `litellm.acompletion(stream=True)`",
    "client_stream": "`DynamicLLMClient.stream()`",
    "compat_stream": "drop-in `openai_compat.AsyncOpenAI` stream",
}


def render(res: dict[str, Any]) -> str:
    m, p, calls = res["machine"], res["parameters"], res["calls"]
    v = m["versions"]
    t = res["targets"]
    lines = [
        "# Benchmarks: creative-services against LiteLLM, its Router, the OpenAI SDK and raw HTTP",
        "",
        f"Command: `{res['command']}` (total {res['elapsed_s'] / 60:.0f} min)",
        "",
        f"- Machine: {m['nproc']} CPUs, {m['cpu']}; {m['platform']}; shared with other sessions "
        f"(noisy: see the notes)",
        f"- {m['python']}; "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + f"; at `{m['commit']}`",
        f"- Date: {m['date']}",
        f"- Calls: {p['calls']} per window, {p['rounds']} rounds, order rotating, "
        f"{p['warmup']} warm-up calls per configuration; fake provider `bench/fake_openai.py` in "
        f"its own process on 127.0.0.1 (streams: 30 content chunks + finish + usage).",
        "",
        "## Targets (one run)",
        "",
        "| target | measured | verdict |",
        "|---|---:|---|",
    ]
    for row in t:
        lines.append(
            f"| {row['target']} | {row['measured']} "
            f"| {_v(row['met']) if row['met'] is not None else 'info'} |"
        )
    lines += [
        "",
        "Ratios are CPU per call, ours over LiteLLM's, the median of per-round paired ratios "
        "(min-max over rounds in the tables below); the verdict uses that median.",
        "",
        "## Per-call CPU, non-streamed",
        "",
        "Median over rounds (min-max). CPU = `time.process_time()` of the whole process per call; "
        "wall = elapsed per call; conns = new TCP connections per call (0.00: pools reused).",
        "",
        "| stack | c | CPU ms/call | wall ms/call | conns/call | vs bare LiteLLM (paired) |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def table(streamed: bool) -> None:
        for key, s in calls["configs"].items():
            stack, conc = key.split("@c")
            if stack.endswith("_stream") != streamed:
                continue
            base = f"litellm_stream@c{conc}" if streamed else f"litellm@c{conc}"
            ratio = paired(calls, key, base)
            rel = "1" if key == base else _fmt(ratio["paired"], 3)
            lines.append(
                f"| {LABELS[stack]} | {conc} | {_fmt(s['cpu_ms'])} | {_fmt(s['wall_ms'])} "
                f"| {s['connections_per_call']:.2f} | {rel} |"
            )

    table(False)
    lines += [
        "",
        "## Per-call CPU, streamed (30 content chunks, usage included)",
        "",
        "| stack | c | CPU ms/call | wall ms/call | conns/call | vs bare LiteLLM stream (paired) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    table(True)
    s = res["settings"]
    switched = (
        ", ".join(
            f"`litellm.{k}` = `{val['ours']}` (LiteLLM: `{val['litellm']}`)"
            for k, val in s["switched"].items()
        )
        or "none"
    )
    lines += [
        "",
        f"LiteLLM module settings switched per window (the library's for its stacks, LiteLLM's "
        f"defaults for bare LiteLLM and Router): {switched}. Set on both sides: "
        + ", ".join(f"`{k}` = {val!r}" for k, val in s["neutral_both_sides"].items())
        + ". Per-call keyword arguments: see `_litellm.build_kwargs`.",
        "",
        "## Import time and memory, fresh interpreters",
        "",
        f"{res['imports']['repeats']} repeats ({res['imports']['heavy_repeats']} for litellm and "
        f"openai), median (min-max). net = wall minus `python -c pass` "
        f"({res['imports']['cached']['python_pass_wall_ms']:.1f} ms, RSS "
        f"{res['imports']['cached']['python_pass_rss_mb']:.1f} MB); statement = the import "
        f"statement timed inside the child. Bytecode cached in a temporary `PYTHONPYCACHEPREFIX` "
        f"(as an installed wheel); the uncached rows compile every module on every start.",
        "",
        "| code | bytecode | net ms | statement ms | RSS MB | RSS added MB | litellm modules |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for env in ("cached", "uncached"):
        for label, row in res["imports"][env].items():
            if not isinstance(row, dict):
                continue
            lines.append(
                f"| `{label}` | {'yes' if env == 'cached' else 'no'} | {_fmt(row['net_ms'], 1)} "
                f"| {_fmt(row['statement_ms'], 1)} | {row['rss_mb']['median']:.1f} "
                f"| {row['rss_added_mb']:.1f} | {row['litellm_modules']} |"
            )
    it = res["imports"]["importtime"]
    lines += [
        "",
        f"`python -X importtime -c '{it['code']}'` (cached, median of {it['repeats']}): the "
        f"largest cumulative times, ms (self in brackets); sum of all self times "
        f"{it['all_self_ms']:.1f} ms:",
        "",
        "; ".join(
            f"`{name}` {row['cumulative_ms']:.1f} ({row['self_ms']:.1f})"
            for name, row in it["top_cumulative"]
        ),
    ]
    if res.get("django"):
        d = res["django"]
        q, tr = d["queries"], d["tracker"]
        lines += [
            "",
            "## Django on PostgreSQL",
            "",
            f"- {d['pg_version']} on the same machine (loopback TCP); Django {v.get('django')}, "
            f"psycopg {v.get('psycopg')}; a scratch database, dropped at the end.",
            f"- SQL statements per call: {q['sync_caller_queries']} in {q['calls']} "
            f"`generate_sync()` calls plus {q['calls']} `candidates()` and `get_by_name()` "
            f"lookups on the caller's thread (`CaptureQueriesContext`); during {q['calls']} async "
            f"`generate()` calls ({q['async_seconds']:.1f} s), statements by thread: "
            + ", ".join(f"{k}: {n}" for k, n in sorted(q["async_statements_by_thread"].items()))
            + " (the registry watcher's version check every 0.5 s and the tracker writer's "
            "`COPY` batches; none per call).",
            f"- `DjangoUsageTracker(batch=True)`, {tr['records']:,} records x {tr['rounds']} "
            f"rounds from one thread: {tr['rate']['median']:,.0f} "
            f"({tr['rate']['min']:,.0f}-{tr['rate']['max']:,.0f}) rows/s committed; `record()` "
            f"p50 {tr['p50_us']['median']:.1f} µs, p99 {tr['p99_us']['median']:.1f} "
            f"({tr['p99_us']['min']:.1f}-{tr['p99_us']['max']:.1f}) µs, p99.9 "
            f"{tr['p999_us']['median']:.1f} µs; process CPU "
            f"{tr['cpu_us_per_record']['median']:.1f} "
            f"µs/record. Unbatched (one INSERT per record): {tr['unbatched']['rate']:,.0f} rows/s, "
            f"p99 {tr['unbatched']['p99_us']:,.0f} µs.",
        ]
    if res.get("memory"):
        mem = res["memory"]
        lines += [
            "",
            f"## Memory over {mem['calls']:,} `generate()` calls (c=32, after {mem['warmup']:,} "
            f"warm-up calls; in-memory tracker keeping the last 1,000 records)",
            "",
            "| calls | RSS MB | live objects (after gc) | LiteLLM cached clients | CPU ms/call |",
            "|---:|---:|---:|---:|---:|",
        ]
        for pt in mem["points"]:
            cpu = f"{pt['cpu_ms_per_call']:.2f}" if "cpu_ms_per_call" in pt else ""
            lines.append(
                f"| {pt['calls']:,} | {pt['rss_mb']:.1f} | {pt['objects']:,} "
                f"| {pt['litellm_client_cache']} | {cpu} |"
            )
        lines += [
            "",
            "Largest live-object growth by type, first to last point: "
            + ", ".join(f"`{k}` {n:+,}" for k, n in mem["top_type_growth"]),
        ]
    return "\n".join(lines) + "\n"


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    imp = res["imports"]["cached"]
    for label in OURS_IMPORTS:
        row = imp[label]
        rows.append(
            {
                "target": f"`{label}` ≤ {IMPORT_TARGET_MS:.0f} ms, no litellm module",
                "measured": f"{row['net_ms']['median']:.1f} ms net "
                f"({row['statement_ms']['median']:.1f} "
                f"ms statement), {row['litellm_modules']} litellm modules",
                "met": row["met"],
            }
        )
    calls = res["calls"]
    for ours, base, what in (
        ("generate@c1", "litellm@c1", "`generate()` CPU ≤ 1.05x bare `litellm.acompletion`, c=1"),
        (
            "generate@c32",
            "litellm@c32",
            "`generate()` CPU ≤ 1.05x bare `litellm.acompletion`, c=32",
        ),
        (
            "client_stream@c1",
            "litellm_stream@c1",
            "`stream()` CPU ≤ 1.05x bare LiteLLM streaming, c=1",
        ),
        (
            "client_stream@c32",
            "litellm_stream@c32",
            "`stream()` CPU ≤ 1.05x bare LiteLLM streaming, c=32",
        ),
    ):
        r = paired(calls, ours, base)
        rows.append(
            {
                "target": what,
                "measured": f"{r['paired']['median']:.3f}x ({r['of_medians']:.3f}x of medians)",
                "met": r["paired"]["median"] <= RATIO_TARGET,
            }
        )
    for ours, base in (
        ("compat_async@c1", "litellm@c1"),
        ("compat_async@c32", "litellm@c32"),
        ("compat_stream@c1", "litellm_stream@c1"),
        ("compat_stream@c32", "litellm_stream@c32"),
    ):
        r = paired(calls, ours, base)
        kind = "streamed" if "stream" in ours else "non-streamed"
        rows.append(
            {
                "target": f"OpenAI drop-in (`AsyncOpenAI`) CPU ≤ {DROP_IN_TARGET}x bare LiteLLM, "
                f"{kind}, c={ours.rpartition('@c')[2]}",
                "measured": f"{r['paired']['median']:.3f}x ({r['of_medians']:.3f}x of medians)",
                "met": r["paired"]["median"] <= DROP_IN_TARGET,
            }
        )
    r = paired(calls, "bridge@c1", "generate@c1", diff=True)
    rows.append(
        {
            "target": f"sync bridge ≤ {BRIDGE_TARGET_MS} ms per call over the async client (c=1)",
            "measured": f"{r['paired']['median']:+.3f} ms ({r['of_medians']:+.3f} ms of medians)",
            "met": r["paired"]["median"] <= BRIDGE_TARGET_MS,
        }
    )
    for ours, base, what in (
        (
            "generate_django@c1",
            "litellm@c1",
            "`generate()` over Django registry + tracker vs bare LiteLLM, c=1",
        ),
        (
            "generate_django@c32",
            "litellm@c32",
            "`generate()` over Django registry + tracker vs bare LiteLLM, c=32",
        ),
        ("router@c1", "litellm@c1", "LiteLLM Router vs bare LiteLLM, c=1"),
        ("openai@c1", "litellm@c1", "`openai` SDK vs bare LiteLLM, c=1"),
    ):
        if ours in calls["configs"]:
            r = paired(calls, ours, base)
            rows.append({"target": what, "measured": f"{r['paired']['median']:.3f}x", "met": None})
    if res.get("django"):
        q, tr = res["django"]["queries"], res["django"]["tracker"]
        rows.append(
            {
                "target": "`DjangoLLMRegistry`: zero queries per call",
                "measured": f"{q['sync_caller_queries_per_call']:.0f} per sync call "
                "(caller thread); "
                f"{q['registry_queries_per_call']:.0f} per async call (caller + loop threads)",
                "met": q["met"],
            }
        )
        rows.append(
            {
                "target": f"`DjangoUsageTracker` batched ≥ {RATE_TARGET:,.0f} records/s "
                "into PostgreSQL",
                "measured": f"{tr['rate']['median']:,.0f} rows/s",
                "met": tr["rate"]["median"] >= RATE_TARGET,
            }
        )
        rows.append(
            {
                "target": f"`record()` p99 ≤ {P99_TARGET_US:.0f} µs (batched)",
                "measured": f"{tr['p99_us']['median']:.1f} µs",
                "met": tr["p99_us"]["median"] <= P99_TARGET_US,
            }
        )
    if res.get("memory"):
        mem = res["memory"]
        half = mem["calls"] // 2
        flat = (
            mem["rss_growth_second_half_mb"] <= 5.0
            and mem["objects_growth"] <= 0.01 * mem["points"][0]["objects"]
        )
        rows.append(
            {
                "target": f"memory flat over {mem['calls']:,} calls",
                "measured": f"RSS {mem['rss_growth_mb']:+.1f} MB overall, "
                f"{mem['rss_growth_second_half_mb']:+.1f} MB "
                f"over the last {half:,}; live objects {mem['objects_growth']:+,}",
                "met": flat,
            }
        )
    return rows


def write(res: dict[str, Any]) -> None:
    RESULTS_JSON.write_text(json.dumps(res, indent=2, default=str) + "\n")
    notes = ""
    if RESULTS_MD.exists():
        _, marker, kept = RESULTS_MD.read_text().partition(NOTES_MARKER)
        notes = kept if marker else ""
    RESULTS_MD.write_text(render(res) + "\n" + NOTES_MARKER + (notes or "\n"))


def versions() -> dict[str, str]:
    out = {}
    for name in ("creative-services", "litellm", "openai", "aiohttp", "httpx", "django", "psycopg"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=64, help="calls per window")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=64, help="untimed calls per configuration")
    parser.add_argument("--settle", type=float, default=0.05, help="seconds after each window")
    parser.add_argument("--import-repeats", type=int, default=15)
    parser.add_argument("--heavy-import-repeats", type=int, default=5, help="litellm, openai")
    parser.add_argument("--query-calls", type=int, default=500)
    parser.add_argument("--tracker-records", type=int, default=50_000)
    parser.add_argument("--tracker-rounds", type=int, default=3)
    parser.add_argument("--memory-calls", type=int, default=100_000, help="0 skips")
    parser.add_argument("--no-django", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.calls < 32:
        parser.error("need --calls >= 32")
    command = "uv run python bench/run.py" + "".join(f" {a}" for a in sys.argv[1:])
    started = time.perf_counter()
    print("import time ...", flush=True)
    imports = bench_imports(args.import_repeats, args.heavy_import_repeats)
    res: dict[str, Any] = {"command": command, "imports": imports}
    with fake_server() as server:
        django = None if args.no_django else DjangoSide(server.base)
        try:
            stacks = Stacks(server.base, django)
            cfgs = configs(django is not None)
            res["settings"] = stacks.settings.describe()
            res["calls"] = asyncio.run(
                bench_calls(server, stacks, cfgs, args.calls, args.rounds, args.warmup, args.settle)
            )
            if django is not None:
                print("django: queries, tracker ...", flush=True)
                django.tracker.flush(60)
                queries = bench_queries(django, args.query_calls)
                django.tracker.flush(60)
                tracker = bench_tracker(args.tracker_records, args.tracker_rounds)
                res["django"] = {
                    "pg_version": django.pg_version,
                    "queries": queries,
                    "tracker": tracker,
                }
        finally:
            if django is not None:
                django.close()
        if args.memory_calls:
            print("memory ...", flush=True)
            res["memory"] = bench_memory(server.base, args.memory_calls, 2_000)
    res["machine"] = {**machine(), "versions": versions()}
    res["parameters"] = vars(args)
    res["elapsed_s"] = time.perf_counter() - started
    res["targets"] = targets(res)
    report = render(res)
    print("\n" + report)
    if not args.no_write:
        write(res)
        print(f"wrote {RESULTS_MD.relative_to(HERE.parent)} and {RESULTS_JSON.name}")


if __name__ == "__main__":
    main()
