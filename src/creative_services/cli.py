"""The ``creative-services`` command: try a tier from the terminal, list the registry; lint
cassettes (``cassettes lint``) and run a fake provider (``fake-provider``) for tests.

Reads the registry from the environment (``DictRegistry.from_env``) and records usage in the
embedded SQLite store (``--usage-db``, ``$CREATIVE_SERVICES_USAGE_DB``, or the user data dir).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from creative_services.types import LLMEntry

__all__ = ["main"]

EXIT_OK, EXIT_LLM_ERROR, EXIT_CONFIG_ERROR = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creative-services", description="Call any LLM by tier; see the registry."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate an answer for a prompt")
    gen.add_argument("prompt")
    pick = gen.add_mutually_exclusive_group()
    pick.add_argument("--tier", help="economy, standard, premium or local (default: standard)")
    pick.add_argument("--model", help="a registry entry name")
    gen.add_argument("--system", help="system prompt")
    gen.add_argument("--max-tokens", type=int)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--timeout", type=float, help="seconds for the whole call (default 60)")
    gen.add_argument("--json", action="store_true", help="print the response as JSON")
    gen.add_argument(
        "--stream",
        action="store_true",
        help="print the answer as it arrives (with --json: at the end)",
    )
    gen.add_argument("--usage-db", help="SQLite file for usage records")
    sub.add_parser("models", help="list the registry's active entries")
    usage = sub.add_parser("usage", help="summarise recorded usage from the SQLite store")
    usage.add_argument("--by", choices=("user", "model", "tier", "day"), default="model")
    usage.add_argument("--since", help="only records on or after this date (YYYY-MM-DD)")
    usage.add_argument("--usage-db", help="SQLite file for usage records")
    usage.add_argument("--json", action="store_true", help="print the summary as JSON")
    sub.add_parser("doctor", help="what is configured, what is missing, and what to do next")
    cassettes = sub.add_parser("cassettes", help="work with recorded HTTP cassettes")
    cassettes_sub = cassettes.add_subparsers(dest="cassettes_command", required=True)
    lint = cassettes_sub.add_parser(
        "lint",
        help="find credentials in cassettes (exit 1 when any is found)",
        description="Report auth headers, cookies, key query parameters, key body fields and "
        "key-shaped strings in cassette files, as FILE:LINE: PROBLEM.",
    )
    lint.add_argument("paths", nargs="+", metavar="PATH", help="cassette files or directories")
    fake = sub.add_parser(
        "fake-provider",
        help="run a fake OpenAI/Anthropic-compatible LLM server until Ctrl-C",
        description="Serve scripted answers on loopback; --reply/--stream/--fail queue answers "
        "in the order given, then every request gets the default answer.",
    )
    fake.add_argument("--host", default="127.0.0.1", help="address to listen on")
    fake.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    fake.add_argument("--default", dest="default_reply", help="the answer when none is queued")
    fake.add_argument("--model", help="the model name answers report")
    for flag, help_text in (
        ("--reply", "queue an answer with this text"),
        ("--stream", "queue a streamed answer; '|' separates its chunks (\"Hel|lo\")"),
        ("--fail", 'queue an error: STATUS or STATUS:TIMES ("429:2")'),
    ):
        fake.add_argument(flag, action=_Script, dest="script", metavar="VALUE", help=help_text)
    fake.add_argument(
        "--retry-after", type=float, help="Retry-After seconds to send with 429/503 errors"
    )
    from creative_services.gateway._cli import add_commands

    add_commands(sub)
    return parser


class _Script(argparse.Action):
    """Collects --reply/--stream/--fail into one list, keeping their command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        script = list(getattr(namespace, self.dest, None) or [])
        script.append(((option_string or "").lstrip("-"), str(values)))
        setattr(namespace, self.dest, script)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 1 the call failed, 2 configuration)."""
    args = _parser().parse_args(argv)
    if args.command == "cassettes":
        from creative_services.testing.lint import run

        return run(args.paths)
    if args.command == "fake-provider":
        return _fake_provider(args)
    if args.command in ("serve", "keys"):
        from creative_services.gateway import _cli

        return _cli.serve_command(args) if args.command == "serve" else _cli.keys_command(args)
    from creative_services import ConfigurationError, DictRegistry, LLMError

    try:
        if args.command == "usage":
            return _usage(args)
        if args.command == "doctor":
            return _doctor()
        registry = DictRegistry.from_env()
        if args.command == "models":
            return _models(registry)
        return _generate(registry, args)
    except ConfigurationError as exc:
        print(f"creative-services: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except LLMError as exc:
        print(f"creative-services: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_LLM_ERROR


def _generate(registry: object, args: argparse.Namespace) -> int:
    from creative_services import DynamicLLMClient, LLMRegistry, SQLiteUsageTracker

    assert isinstance(registry, LLMRegistry)
    client = DynamicLLMClient(registry, tracker=SQLiteUsageTracker(args.usage_db))
    request: dict[str, Any] = {
        "system_prompt": args.system,
        "tier": None if args.model else (args.tier or "standard"),
        "llm_name": args.model,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "timeout": args.timeout,
    }
    if args.stream:
        with client.stream_sync(args.prompt, **request) as stream:
            for text in stream:
                if not args.json:
                    sys.stdout.write(text)
                    sys.stdout.flush()
        response = stream.response
        if not args.json:
            sys.stdout.write("\n")
            return EXIT_OK
    else:
        response = client.generate_sync(args.prompt, **request)
    if args.json:
        out = {
            "content": response.content,
            "entry": {
                "id": response.entry.id,
                "name": response.entry.name,
                "provider": response.entry.provider,
                "model": response.entry.model,
                "tier": response.entry.tier.value,
            },
            "model": response.model,
            "usage": {
                "prompt_tokens": response.usage.prompt_tokens,
                "completion_tokens": response.usage.completion_tokens,
                "reasoning_tokens": response.usage.reasoning_tokens,
                "total_tokens": response.usage.total_tokens,
                "estimated": response.usage.estimated,
            },
            "cost": None if response.cost is None else str(response.cost),
            "cost_source": response.cost_source,
            "attempts": response.attempts,
            "latency_ms": round(response.latency_ms, 1),
        }
        print(json.dumps(out, indent=2))
    else:
        print(response.content or "")
    return EXIT_OK


def _models(registry: object) -> int:
    from creative_services import LLMRegistry

    assert isinstance(registry, LLMRegistry)
    rows = [("ID", "NAME", "TIER", "PROVIDER", "MODEL", "$/1K IN", "$/1K OUT", "KEY")]
    for e in registry.list_active():
        rows.append(
            (
                str(e.id),
                e.name,
                e.tier.value,
                e.provider,
                e.model_name,
                "-" if e.cost_per_1k_input is None else str(e.cost_per_1k_input),
                "-" if e.cost_per_1k_output is None else str(e.cost_per_1k_output),
                _key_status(e),
            )
        )
    _print_table(rows)
    return EXIT_OK


def _key_status(entry: LLMEntry) -> str:
    """ "set", "not needed", or "missing: VAR" — never the key itself."""
    from creative_services import MissingAPIKeyError
    from creative_services._providers import resolve_api_key

    try:
        return "set" if resolve_api_key(entry, os.environ) else "not needed"
    except MissingAPIKeyError as exc:
        return f"missing: {exc.env_var or 'api_key'}"


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def _usage(args: argparse.Namespace) -> int:
    import sqlite3
    from decimal import Decimal

    from creative_services.tracking import default_usage_db_path

    path = args.usage_db or default_usage_db_path()
    if not os.path.exists(path):
        print(f"no usage recorded yet ({path} does not exist)")
        return EXIT_OK
    column = {
        "user": "user_id",
        "model": "model",
        "tier": "tier",
        "day": "substr(created_at, 1, 10)",
    }
    groups: dict[str, dict[str, Any]] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
        cache_hit = "cache_hit" if "cache_hit" in columns else "0"  # files from before 0.1.0
        query = (
            f"SELECT {column[args.by]}, outcome, prompt_tokens, completion_tokens, cost, "  # noqa: S608 - fixed column names
            f"{cache_hit} FROM usage" + (" WHERE created_at >= ?" if args.since else "")
        )
        for key, outcome, prompt, completion, cost, hit in conn.execute(
            query, (args.since,) if args.since else ()
        ):
            g = groups.setdefault(
                str(key),
                {"calls": 0, "failed": 0, "cached": 0, "prompt": 0, "completion": 0,
                 "cost": Decimal(0), "unpriced": 0},
            )  # fmt: skip
            g["calls"] += 1
            g["failed"] += outcome != "success"
            if hit:  # answered from the response cache: no tokens used, cost 0
                g["cached"] += 1
                continue
            g["prompt"] += prompt
            g["completion"] += completion
            if cost is None:
                g["unpriced"] += 1
            else:
                g["cost"] += Decimal(cost)
    if args.json:
        print(json.dumps({k: {**v, "cost": str(v["cost"])} for k, v in groups.items()}, indent=2))
        return EXIT_OK
    rows: list[tuple[str, ...]] = [
        (args.by.upper(), "CALLS", "FAILED", "CACHED", "PROMPT", "COMPLETION", "COST $", "UNPRICED")
    ]
    for key, g in sorted(groups.items()):
        rows.append(
            (
                key,
                *(
                    str(g[f])
                    for f in (
                        "calls",
                        "failed",
                        "cached",
                        "prompt",
                        "completion",
                        "cost",
                        "unpriced",
                    )
                ),
            )
        )
    _print_table(rows)
    return EXIT_OK


def _doctor() -> int:
    """Print what is configured and the next step; non-zero when a call could not work."""
    from importlib.metadata import PackageNotFoundError, version

    from creative_services import ConfigurationError, DictRegistry, LLMTier
    from creative_services.registry.dict import MODELS_ENV
    from creative_services.tracking import default_usage_db_path

    problems: list[str] = []
    try:
        litellm_version = version("litellm")
    except PackageNotFoundError:
        litellm_version = "not installed"
        problems.append("LiteLLM is missing: pip install creative-services")
    print(f"litellm: {litellm_version}")
    if litellm_version in {"1.82.7", "1.82.8"}:
        problems.append(f"litellm {litellm_version} shipped a credential stealer: upgrade now")
    source = f"{MODELS_ENV}" if os.environ.get(MODELS_ENV) else "provider keys (zero-config)"
    print(f"registry: from {source}")
    try:
        registry = DictRegistry.from_env()
    except ConfigurationError as exc:
        problems.append(str(exc))
        registry = None
    if registry is not None:
        for tier in LLMTier:
            names = [f"{e.name} ({e.provider}/{e.model_name}, key {_key_status(e)})"
                     for e in registry.list_active() if e.tier is tier]  # fmt: skip
            print(f"  {tier.value}: {', '.join(names) if names else '-'}")
            problems += [
                f"entry {e.name}: key {_key_status(e)}"
                for e in registry.list_active()
                if e.tier is tier and _key_status(e).startswith("missing")
            ]
        if not any(e.tier is LLMTier.STANDARD for e in registry.list_active()):
            problems.append(
                "no entry serves the standard tier (the default): add one or set OPENAI_API_KEY"
            )
    print(f"usage store: {default_usage_db_path()}")
    if problems:
        print("\nproblems:")
        for problem in problems:
            print(f"  - {problem}")
        return EXIT_CONFIG_ERROR
    print('\nok: try  creative-services generate "Say hello"')
    return EXIT_OK


def _fake_provider(args: argparse.Namespace) -> int:
    """Serve a scripted FakeProvider in the foreground; 0 on Ctrl-C, 2 on a bad option."""
    from creative_services.testing.fake_provider import FakeProvider

    try:
        fake = FakeProvider(args.host, args.port)
    except OSError as exc:
        print(
            f"creative-services: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return EXIT_CONFIG_ERROR
    if args.default_reply is not None:
        fake.default_content = args.default_reply
    if args.model:
        fake.model = args.model
    retry = {} if args.retry_after is None else {"retry-after": f"{args.retry_after:g}"}
    for kind, value in args.script or ():
        if kind == "reply":
            fake.reply(value)
        elif kind == "stream":
            fake.stream(value.split("|"))
        else:
            status, _, times = value.partition(":")
            if not status.isdigit() or (times and not times.isdigit()):
                fake.stop()
                print(f"creative-services: --fail wants STATUS[:TIMES], got {value!r}",
                      file=sys.stderr)  # fmt: skip
                return EXIT_CONFIG_ERROR
            code = int(status)
            headers = retry if code in (429, 503, 529) else {}
            fake.fail(code, headers=headers, times=int(times or 1))
    print(f"fake provider listening on {fake.base_url}", flush=True)
    print(
        f"  OpenAI-style entries: api_endpoint={fake.base_url}  (or OPENAI_BASE_URL)\n"
        f"  Anthropic entries:    api_endpoint={fake.base_url}\n"
        "  Ctrl-C to stop",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever()
    print(f"served {len(fake.requests)} request(s)", flush=True)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
