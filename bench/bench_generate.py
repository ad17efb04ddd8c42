"""Per-call CPU of ``DynamicLLMClient.generate()`` vs bare ``litellm.acompletion``; import time.

Run::

    uv run python bench/bench_generate.py [--calls N] [--rounds R] [--import-repeats K]

A fake OpenAI server (``bench/fake_openai.py``) runs in a separate process, so only the client's
CPU is counted. In this one process the stacks run interleaved, round after round (the order
rotates each round), so machine noise hits them all alike:

* ``litellm``: bare ``await litellm.acompletion(...)`` on the benchmark's own event loop;
* ``generate``: ``await client.generate(prompt=..., tier="standard")``;
* ``generate_sync``: ``client.generate_sync(...)`` from a worker thread (concurrency 1 only).

Concurrency 32 means 32 tasks on one event loop, each making its share of the calls in sequence.
CPU is ``time.process_time()`` (every thread of the process: the client runs its calls on a
background loop thread; LiteLLM runs callbacks on its own threads), divided by the calls made.
Each window also waits ``--settle`` seconds after the last answer so that LiteLLM's deferred
logging work is charged to the stack that caused it. Medians over rounds are reported with their
spread; ratios are generate/litellm per concurrency, both as a ratio of medians and as the median
of per-round ratios (paired: the two windows ran seconds apart), which the verdict uses.

Import time is measured in fresh interpreters: wall time of ``python -c "<import>"`` minus
``python -c pass`` (medians), ``-X importtime``'s cumulative time of ``creative_services``, and
which heavy packages ``import creative_services`` loads.

Prints its report. ``bench/run.py`` is the harness that writes ``bench/RESULTS.md`` (it reuses
this module's fake server, measurement and import helpers); ``--write`` writes this report to
``bench/generate_results.md`` and ``bench/generate_results.json`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# LiteLLM fetches its price map from the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "generate_results.md"
RESULTS_JSON = HERE / "generate_results.json"
NOTES_MARKER = "<!-- notes below this line are kept when the benchmark rewrites this file -->"

MODEL = "gpt-4o-mini"
PROMPT = "Say hello in five words."
MAX_TOKENS = 4096  # what the client sends: the entry's defaults
TEMPERATURE = 0.7
TIMEOUT = 60.0
CPU_TARGET = 1.10
IMPORT_TARGET_MS = 60.0
CONCURRENCIES = (1, 32)
HEAVY_MODULES = ("litellm", "openai", "httpx", "aiohttp", "django", "pydantic", "structlog")
IMPORTS = {
    "import creative_services": "import creative_services",
    "from creative_services import DictRegistry, DynamicLLMClient, LLMTier": (
        "from creative_services import DictRegistry, DynamicLLMClient, LLMTier"
    ),
}

AsyncCall = Callable[[], Awaitable[object]]


class _LoopSwitchNoise(logging.Filter):
    """Counts and hides asyncio's "Task was destroyed" reports for LiteLLM's logging worker.

    LiteLLM keeps one process-wide logging worker bound to one event loop; every switch between
    the benchmark's loop (bare LiteLLM) and the library's loop rebinds it and drops the old
    worker task. That is an artefact of running both stacks in one process; it is counted in
    the results instead of printed.
    """

    dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "LoggingWorker" in record.getMessage() and "destroyed" in record.getMessage():
            type(self).dropped += 1
            return False
        return True


# --- the fake server -----------------------------------------------------------------------------


class FakeServer:
    """``bench/fake_openai.py`` in a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fake_openai.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"fake server did not start (said {line!r})")
        self.port = int(line[1])
        self.base = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, int]:
        """Connections accepted and completions served so far (includes this request's one)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return dict(json.load(r))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- the stacks ----------------------------------------------------------------------------------


def load_litellm() -> Any:
    """LiteLLM with the settings the library itself applies (quiet, no retries, no telemetry)."""
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.num_retries = 0
    return litellm


class Stacks:
    """The three ways of making one call that are compared."""

    def __init__(self, base: str) -> None:
        from decimal import Decimal

        from creative_services import (
            DictRegistry,
            DynamicLLMClient,
            InMemoryUsageTracker,
            LLMEntry,
            Secret,
        )

        self.litellm = load_litellm()
        self.base = base
        self.messages = [{"role": "user", "content": PROMPT}]
        entry = LLMEntry(
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
        self.tracker = InMemoryUsageTracker()
        self.client = DynamicLLMClient(DictRegistry([entry]), tracker=self.tracker)

    async def bare(self) -> object:
        response = await self.litellm.acompletion(
            model=f"openai/{MODEL}",
            messages=self.messages,
            api_base=self.base,
            api_key="bench",
            num_retries=0,
            max_retries=0,
            max_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
            timeout=TIMEOUT,
        )
        assert response.choices[0].message.content
        return response

    async def generate(self) -> object:
        response = await self.client.generate(prompt=PROMPT, tier="standard")
        assert response.content
        return response

    def generate_sync(self) -> object:
        response = self.client.generate_sync(prompt=PROMPT, tier="standard")
        assert response.content
        return response


def _shares(calls: int, concurrency: int) -> list[int]:
    """``calls`` split over ``concurrency`` workers as evenly as possible."""
    base, extra = divmod(calls, concurrency)
    return [base + (1 if i < extra else 0) for i in range(concurrency)]


async def run_async(call: AsyncCall, calls: int, concurrency: int) -> None:
    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(worker(n) for n in _shares(calls, concurrency) if n))


async def run_in_thread(call: Callable[[], object], calls: int) -> None:
    def worker() -> None:
        for _ in range(calls):
            call()

    await asyncio.to_thread(worker)


@dataclass(frozen=True)
class Config:
    stack: str
    concurrency: int

    @property
    def key(self) -> str:
        return f"{self.stack}@c{self.concurrency}"


CONFIGS = (
    Config("litellm", 1),
    Config("generate", 1),
    Config("generate_sync", 1),
    Config("litellm", 32),
    Config("generate", 32),
)


def runner(stacks: Stacks, config: Config) -> Callable[[int], Awaitable[None]]:
    if config.stack == "litellm":
        return lambda n: run_async(stacks.bare, n, config.concurrency)
    if config.stack == "generate":
        return lambda n: run_async(stacks.generate, n, config.concurrency)
    if config.stack == "generate_sync":
        assert config.concurrency == 1
        return lambda n: run_in_thread(stacks.generate_sync, n)
    raise ValueError(config.stack)


@dataclass(frozen=True)
class Sample:
    cpu_ms: float
    wall_ms: float
    connections: float
    """New TCP connections the server accepted per call (0 when the client reuses its pool)."""


async def measure(
    run: Callable[[int], Awaitable[None]], calls: int, server: FakeServer, settle: float
) -> Sample:
    gc.collect()
    await asyncio.sleep(settle)  # the previous window's stragglers finish outside this one
    before = server.stats()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await run(calls)
    wall1 = time.perf_counter()
    await asyncio.sleep(settle)  # deferred logging callbacks are charged to this stack
    cpu1 = time.process_time()
    after = server.stats()
    served = after["requests"] - before["requests"]
    if served != calls:
        raise RuntimeError(f"expected {calls} completions, the server saw {served}")
    return Sample(
        cpu_ms=(cpu1 - cpu0) / calls * 1e3,
        wall_ms=(wall1 - wall0) / calls * 1e3,
        connections=(after["connections"] - before["connections"] - 1) / calls,
    )


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q1, _, q3 = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else ordered * 3
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
    }


async def bench_calls(
    server: FakeServer, calls: int, rounds: int, warmup: int, settle: float
) -> dict[str, Any]:
    logging.getLogger("asyncio").addFilter(_LoopSwitchNoise())
    stacks = Stacks(server.base)
    runs = {c.key: runner(stacks, c) for c in CONFIGS}
    print(f"warming up ({warmup} calls per configuration) ...", flush=True)
    for config in CONFIGS:
        await runs[config.key](warmup)  # first calls import LiteLLM's providers, open pools
    samples: dict[str, list[Sample]] = {c.key: [] for c in CONFIGS}
    for r in range(rounds):
        order = CONFIGS[r % len(CONFIGS) :] + CONFIGS[: r % len(CONFIGS)]
        line = []
        for config in order:
            sample = await measure(runs[config.key], calls, server, settle)
            samples[config.key].append(sample)
            line.append(f"{config.key} {sample.cpu_ms:.2f}")
        print(f"round {r + 1}/{rounds} (CPU ms/call): " + ", ".join(line), flush=True)
    stats: dict[str, dict[str, Any]] = {
        key: {
            "cpu_ms": spread([s.cpu_ms for s in values]),
            "wall_ms": spread([s.wall_ms for s in values]),
            "connections_per_call": statistics.median(s.connections for s in values),
            "samples": [asdict(s) for s in values],
        }
        for key, values in samples.items()
    }
    ratios: dict[str, Any] = {}
    for stack, concurrency in (("generate", 1), ("generate", 32), ("generate_sync", 1)):
        ours, bare = samples[f"{stack}@c{concurrency}"], samples[f"litellm@c{concurrency}"]
        paired = [o.cpu_ms / b.cpu_ms for o, b in zip(ours, bare, strict=True)]
        of_medians = (
            stats[f"{stack}@c{concurrency}"]["cpu_ms"]["median"]
            / stats[f"litellm@c{concurrency}"]["cpu_ms"]["median"]
        )
        # The verdict uses the paired ratio: both windows of a round ran seconds apart, so it
        # cancels the slow drift of a shared machine that a ratio of medians still carries.
        paired_median = statistics.median(paired)
        ratios[f"{stack}/litellm@c{concurrency}"] = {
            "of_medians": of_medians,
            "paired": spread(paired),
            "target": CPU_TARGET if stack == "generate" else None,
            "met": paired_median <= CPU_TARGET if stack == "generate" else None,
        }
    return {
        "configs": stats,
        "ratios": ratios,
        "records_tracked": len(stacks.tracker.records),
        "litellm_logging_worker_rebinds_dropped": _LoopSwitchNoise.dropped,
    }


# --- import time ---------------------------------------------------------------------------------


def _python(*args: str, env: dict[str, str], stderr: bool = False) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=True
    )
    return time.perf_counter() - started, done.stderr if stderr else done.stdout


def _import_env(pycache: str | None) -> dict[str, str]:
    """The child's environment: with a bytecode cache in ``pycache`` (outside the source tree),
    or with none at all (every module compiled from source on every start)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _importtime(code: str, env: dict[str, str]) -> dict[str, float]:
    """``-X importtime``: creative_services' cumulative time and all modules' self time, in ms."""
    _, err = _python("-X", "importtime", "-c", code, env=env, stderr=True)
    cumulative, total_self, modules = 0.0, 0.0, 0
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
        total_self += int(self_us)
        modules += 1
        if name == "creative_services":
            cumulative = int(cum_us) / 1e3
    return {"cumulative_ms": cumulative, "all_self_ms": total_self / 1e3, "modules": modules}


def _wall_times(repeats: int, envs: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Wall time of each import command under each environment, all interleaved."""
    commands = {"python -c pass": "pass", **IMPORTS}
    cases = [(env, label) for env in envs for label in commands]
    for env, label in cases:  # write the bytecode cache, warm the page cache; untimed
        _python("-c", commands[label], env=envs[env])
    walls: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    for i in range(repeats):
        for env, label in cases[i % len(cases) :] + cases[: i % len(cases)]:
            walls[env, label].append(_python("-c", commands[label], env=envs[env])[0] * 1e3)
    results: dict[str, dict[str, Any]] = {}
    for env in envs:
        baseline = statistics.median(walls[env, "python -c pass"])
        result: dict[str, Any] = {"baseline_ms": spread(walls[env, "python -c pass"])}
        for label in IMPORTS:
            net = [w - baseline for w in walls[env, label]]
            result[label] = {
                "wall_ms": spread(walls[env, label]),
                "net_ms": spread(net),
                "met": statistics.median(net) <= IMPORT_TARGET_MS,
            }
        results[env] = result
    return results


def bench_imports(repeats: int) -> dict[str, Any]:
    """Import cost in fresh interpreters, with a bytecode cache (what an installed package gets;
    the verdict) and without one (``PYTHONDONTWRITEBYTECODE=1``, as some sandboxes and CI run)."""
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        env = _import_env(pycache)
        walls = _wall_times(repeats, {"cached": env, "uncached": _import_env(None)})
        result: dict[str, Any] = {"repeats": repeats, **walls["cached"]}
        timings = [_importtime("import creative_services", env) for _ in range(repeats)]
        baseline_self = statistics.median(
            _importtime("pass", env)["all_self_ms"] for _ in range(repeats)
        )
        result["importtime"] = {
            "creative_services_cumulative_ms": spread([t["cumulative_ms"] for t in timings]),
            "all_self_ms": spread([t["all_self_ms"] for t in timings]),
            "python_pass_all_self_ms": baseline_self,
            "modules": timings[0]["modules"],
        }
        probe = (
            "import creative_services, json, sys; "
            f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
        )
        loaded = json.loads(_python("-c", probe, env=env)[1])
    result["heavy_modules_after_import"] = loaded
    result["litellm_imported"] = "litellm" in loaded
    result["no_bytecode_cache"] = walls["uncached"]
    return result


# --- the report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": {
            name: ver(name)
            for name in ("creative-services", "litellm", "openai", "aiohttp", "httpx")
        },
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _fmt(s: dict[str, float], digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _verdict(met: bool) -> str:
    return "**met**" if met else "**NOT met**"


def render(results: dict[str, Any]) -> str:
    m, calls, imports = results["machine"], results["calls"], results["imports"]
    p = results["parameters"]
    v = m["versions"]
    lines = [
        "# Benchmark: `DynamicLLMClient.generate()` vs bare `litellm.acompletion`",
        "",
        f"Command: `uv run python bench/bench_generate.py --calls {p['calls']} "
        f"--rounds {p['rounds']} --import-repeats {p['import_repeats']}` "
        f"(total {results['elapsed_s']:.0f} s)",
        "",
        f"- Machine: {m['nproc']} CPUs, {m['cpu']}; {m['platform']}",
        f"- {m['python']}; litellm {v['litellm']}, openai {v['openai']}, aiohttp {v['aiohttp']}, "
        f"httpx {v['httpx']}; creative-services {v['creative-services']} at `{m['commit']}`",
        f"- Date: {m['date']}",
        f"- Per round and configuration: {p['calls']} calls against the loopback fake server "
        f"(`bench/fake_openai.py`, separate process); {p['rounds']} rounds, order rotating; "
        f"{p['warmup']} warm-up calls per configuration first.",
        "",
        "## Per-call cost",
        "",
        "Median over rounds (min-max). CPU = `time.process_time()` of the whole process (all "
        "threads) per call; wall = elapsed per call; conns = new TCP connections per call.",
        "",
        "| stack | concurrency | CPU ms/call | CPU IQR | wall ms/call | conns/call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, s in calls["configs"].items():
        stack, conc = key.split("@c")
        cpu = s["cpu_ms"]
        lines.append(
            f"| `{stack}` | {conc} | {_fmt(cpu)} | {cpu['q1']:.2f}-{cpu['q3']:.2f} "
            f"| {_fmt(s['wall_ms'])} | {s['connections_per_call']:.2f} |"
        )
    lines += [
        "",
        "| ratio (CPU) | of medians | per-round paired: median (min-max) | target (on paired) |",
        "|---|---:|---:|---|",
    ]
    for key, r in calls["ratios"].items():
        target = f"≤ {r['target']:.2f}: {_verdict(r['met'])}" if r["target"] is not None else "info"
        lines.append(f"| {key} | {r['of_medians']:.3f} | {_fmt(r['paired'], 3)} | {target} |")
    it = imports["importtime"]
    lines += [
        "",
        "## Import time",
        "",
        f"Fresh interpreter each time, {imports['repeats']} repeats, median (min-max); net = "
        f"wall minus the median of `python -c pass` ({_fmt(imports['baseline_ms'], 1)} ms with "
        f"a bytecode cache). The target applies to the cached case: an installed package has "
        f"its `.pyc` files (the cache is written to a temporary `PYTHONPYCACHEPREFIX`, not into "
        f"`src/`).",
        "",
        "| code | bytecode cache | wall ms | net ms | target ≤ 60 ms |",
        "|---|---|---:|---:|---|",
    ]
    nocache = imports["no_bytecode_cache"]
    for label in IMPORTS:
        i, n = imports[label], nocache[label]
        lines.append(
            f"| `{label}` | yes | {_fmt(i['wall_ms'], 1)} | {_fmt(i['net_ms'], 1)} "
            f"| {_verdict(i['met'])} |"
        )
        lines.append(
            f"| `{label}` | no (`PYTHONDONTWRITEBYTECODE=1`) | {_fmt(n['wall_ms'], 1)} "
            f"| {_fmt(n['net_ms'], 1)} | info |"
        )
    lines += [
        "",
        f"- `python -X importtime -c 'import creative_services'` (cached): cumulative "
        f"`creative_services` {_fmt(it['creative_services_cumulative_ms'], 1)} ms; sum of all "
        f"modules' self time {_fmt(it['all_self_ms'], 1)} ms (vs "
        f"{it['python_pass_all_self_ms']:.1f} ms for `-c pass`); {it['modules']} modules.",
        f"- Heavy packages in `sys.modules` after `import creative_services`: "
        f"{', '.join(imports['heavy_modules_after_import']) or 'none'} "
        f"(litellm must not be: {'**FAIL**' if imports['litellm_imported'] else 'ok'}).",
        "",
        "## Targets",
        "",
    ]
    for key in ("generate/litellm@c1", "generate/litellm@c32"):
        r = calls["ratios"][key]
        lines.append(
            f"- {key} CPU ≤ {CPU_TARGET:.2f}x: {r['paired']['median']:.3f}x paired "
            f"({r['of_medians']:.3f}x of medians) — {_verdict(r['met'])}"
        )
    for label in IMPORTS:
        i = imports[label]
        lines.append(
            f"- `{label}` ≤ {IMPORT_TARGET_MS:.0f} ms: {i['net_ms']['median']:.1f} ms "
            f"— {_verdict(i['met'])}"
        )
    lines.append(
        f"- litellm not imported by `import creative_services`: "
        f"{_verdict(not imports['litellm_imported'])}"
    )
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any]) -> None:
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    notes = ""
    if RESULTS_MD.exists():
        _, marker, kept = RESULTS_MD.read_text().partition(NOTES_MARKER)
        notes = kept if marker else ""
    RESULTS_MD.write_text(render(results) + "\n" + NOTES_MARKER + (notes or "\n"))


@contextmanager
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=128, help="calls per configuration per round")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=64, help="untimed calls per configuration")
    parser.add_argument("--settle", type=float, default=0.05, help="seconds; see the docstring")
    parser.add_argument("--import-repeats", type=int, default=15)
    parser.add_argument("--write", action="store_true", help="also write generate_results.md")
    args = parser.parse_args()
    if args.calls < max(CONCURRENCIES) or args.rounds < 1 or args.import_repeats < 1:
        parser.error(f"need --calls >= {max(CONCURRENCIES)}, --rounds >= 1, --import-repeats >= 1")

    started = time.perf_counter()
    print("import time ...", flush=True)
    imports = bench_imports(args.import_repeats)  # before LiteLLM loads here: a quieter machine
    with fake_server() as server:
        calls = asyncio.run(bench_calls(server, args.calls, args.rounds, args.warmup, args.settle))
    results = {
        "machine": machine(),
        "parameters": {
            "calls": args.calls,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "settle_s": args.settle,
            "import_repeats": args.import_repeats,
            "concurrencies": list(CONCURRENCIES),
        },
        "calls": calls,
        "imports": imports,
        "elapsed_s": time.perf_counter() - started,
    }
    report = render(results)
    print("\n" + report)
    if args.write:
        write(results)
        print(f"wrote {RESULTS_MD.relative_to(HERE.parent)} and {RESULTS_JSON.name}")


if __name__ == "__main__":
    main()
