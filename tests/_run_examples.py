"""Run one page's examples (a JSON list from tests/_doc_examples.py) against a FakeProvider.

Usage: ``python tests/_run_examples.py EXAMPLES.json RESULTS.json``. Run by
tests/test_docs_examples.py in a fresh interpreter per page. The FakeProvider listens on
127.0.0.1 and the environment points the zero-config registry and the openai SDK at it
(``OPENAI_API_KEY=fake``, ``OPENAI_BASE_URL``); any other host name fails to resolve, so an
example that would reach a real provider fails at once instead of hanging.

Each example runs in a fresh ``__main__`` namespace (or the previous example's, when it is marked
``.. continues-example``), top-level ``await`` inside ``asyncio.run``; its printed output is
compared with the page's ``Output`` block, if it has one. An example that is a test file
(first line ``# test_<name>.py``) is written to a temporary directory and run with pytest and the
creative-services pytest plugin, as the testing page tells users to.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import inspect
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
_TEST_FILE = re.compile(r"^# (test_\w+\.py)\s*$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1", None}
_real_getaddrinfo = socket.getaddrinfo


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOOPBACK:
        raise socket.gaierror(socket.EAI_NONAME, f"docs examples run offline: {name}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _timeout(signum: int, frame: Any) -> None:
    raise TimeoutError(f"the example ran longer than {TIMEOUT} s")


def _run_code(source: str, where: str, namespace: dict[str, Any]) -> None:
    code = compile(source, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))  # noqa: S307 -- the documentation's own example
    else:
        exec(code, namespace)  # noqa: S102


def _run_test_file(source: str, name: str) -> str:
    """Run a test-file example with pytest; returns pytest's output (raises on failure)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_text(source, encoding="utf-8")
        # A project like the user's: cassettes/ at the rootdir (the repository's), async tests
        # run by pytest-asyncio in auto mode.
        (Path(tmp) / "cassettes").symlink_to(ROOT / "cassettes")
        (Path(tmp) / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             "-p", "creative_services.testing.pytest_plugin", name],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT * 2, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"pytest failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
        return result.stdout


def _check_output(expected: str, got: str) -> None:
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    if not checker.check_output(expected, got, flags):
        raise AssertionError(f"printed output differs from the page:\n--- page\n{expected}"
                             f"--- printed\n{got}")  # fmt: skip


def run_example(example: dict[str, Any], fake: Any, namespace: dict[str, Any]) -> dict[str, Any]:
    fake.clear()
    for reply in example["replies"]:
        fake.reply(reply)
    printed = io.StringIO()
    signal.alarm(TIMEOUT)
    try:
        first = example["source"].splitlines()[0] if example["source"].strip() else ""
        test_file = _TEST_FILE.match(first)
        if test_file:
            _run_test_file(example["source"], test_file.group(1))
        else:
            with contextlib.redirect_stdout(printed):
                _run_code(example["source"], example["where"], namespace)
        if example["output"] is not None:
            _check_output(example["output"], printed.getvalue())
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        text = "".join(traceback.format_exception(exc))
        return {
            "where": example["where"],
            "ok": False,
            "error": text,
            "printed": printed.getvalue(),
        }
    finally:
        signal.alarm(0)
    return {"where": example["where"], "ok": True, "printed": printed.getvalue()}


def main(examples_path: str, results_path: str) -> None:
    from creative_services.testing import FakeProvider

    examples = json.loads(Path(examples_path).read_text(encoding="utf-8"))
    socket.getaddrinfo = _loopback_only
    signal.signal(signal.SIGALRM, _timeout)
    results = []
    with FakeProvider() as fake:
        os.environ.update(OPENAI_API_KEY="fake", OPENAI_BASE_URL=fake.base_url)
        namespace: dict[str, Any] = {}
        for example in examples:
            if not example["continues"]:
                namespace = {"__name__": "__main__"}
            results.append(run_example(example, fake, namespace))
            Path(results_path).write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
