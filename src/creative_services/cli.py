"""The ``creative-services`` command: try a tier from the terminal, list the registry.

Reads the registry from the environment (``DictRegistry.from_env``) and records usage in the
embedded SQLite store (``--usage-db``, ``$CREATIVE_SERVICES_USAGE_DB``, or the user data dir).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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
    gen.add_argument("--usage-db", help="SQLite file for usage records")
    sub.add_parser("models", help="list the registry's active entries")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 1 the call failed, 2 configuration)."""
    args = _parser().parse_args(argv)
    from creative_services import ConfigurationError, DictRegistry, LLMError

    try:
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
    response = client.generate_sync(
        args.prompt,
        system_prompt=args.system,
        tier=None if args.model else (args.tier or "standard"),
        llm_name=args.model,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        timeout=args.timeout,
    )
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
    rows = [("ID", "NAME", "TIER", "PROVIDER", "MODEL", "$/1K IN", "$/1K OUT")]
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
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
