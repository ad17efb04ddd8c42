"""``creative-services serve`` and ``creative-services keys create|list|revoke``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

__all__ = ["add_commands", "keys_command", "serve_command"]


def add_commands(sub: Any) -> None:
    """Add ``serve`` and ``keys`` to the ``creative-services`` subcommands."""
    serve = sub.add_parser("serve", help="run the OpenAI-compatible HTTP gateway (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4000, help="port (default 4000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--keys-db", help="SQLite file of virtual keys")
    serve.add_argument("--log-level", default="warning", help="uvicorn's log level")
    serve.add_argument("--no-access-log", action="store_true", help="no gateway_request lines")
    keys = sub.add_parser("keys", help="manage the gateway's virtual keys")
    keys.add_argument("--keys-db", help="SQLite file of virtual keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--user", required=True, help="the user its usage and budget are on")
    create.add_argument("--name", default="", help="a label")
    create.add_argument("--model", action="append", default=[], dest="models",
                        help="a tier or entry it may use (repeat; default: all)")  # fmt: skip
    create.add_argument("--expires-in", type=float, help="seconds until it expires")
    keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")


def _store(args: argparse.Namespace) -> Any:
    """The key store ``serve`` uses: the Django project's table when DJANGO_SETTINGS_MODULE
    is set, else the SQLite file."""
    from creative_services.gateway import KEYS_ENV, VirtualKeyStore, default_keys_path

    if os.environ.get("DJANGO_SETTINGS_MODULE") and args.command == "keys":
        import django

        django.setup()
        from creative_services.contrib.django.gateway_keys import DjangoKeyStore

        return DjangoKeyStore()
    if args.keys_db:
        os.environ[KEYS_ENV] = args.keys_db
    return VirtualKeyStore(default_keys_path())


def keys_command(args: argparse.Namespace) -> int:
    """Run ``keys create|list|revoke``; 0 ok, 1 no such key."""
    store = _store(args)
    if args.keys_command == "create":
        key, record = store.create(
            args.user, name=args.name, models=args.models, expires_in=args.expires_in
        )
        print(key)
        print(f"id {record.key_id}: shown once, store it now", file=sys.stderr)
        return 0
    if args.keys_command == "revoke":
        if store.revoke(args.key_id):
            print(f"revoked {args.key_id}")
            return 0
        print(f"creative-services: no active key with id {args.key_id}", file=sys.stderr)
        return 1
    now = dt.datetime.now(dt.UTC).timestamp()
    for k in store.list():
        when = dt.datetime.fromtimestamp(k.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        models = json.dumps(list(k.models)) if k.models else "all"
        print(f"{k.key_id}  {k.state(now):8}  user={k.user_id}  models={models}  {when}  {k.name}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    """Run the gateway under uvicorn until stopped."""
    try:
        import uvicorn
    except ImportError:
        print("creative-services: serve needs uvicorn: pip install 'creative-services[gateway]'",
              file=sys.stderr)  # fmt: skip
        return 2
    from creative_services.gateway import app_from_env

    _store(args)  # sets the variable the workers read, and creates the file
    os.environ.setdefault(
        "CREATIVE_SERVICES_GATEWAY_ACCESS_LOG", "0" if args.no_access_log else "1"
    )
    app_from_env()  # configuration errors now, not in every worker
    uvicorn.run(
        "creative_services.gateway:app_from_env", factory=True, host=args.host,
        port=args.port, workers=args.workers, log_level=args.log_level, access_log=False,
    )  # fmt: skip
    return 0
