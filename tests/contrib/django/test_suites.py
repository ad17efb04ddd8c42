"""Runs the Django adapter tests on SQLite and on PostgreSQL, each in a child pytest process.

Collected only in a run of the whole suite (see conftest.py): Django is never configured in the
process that runs the rest of the tests. Both children run at the same time.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import HERE, IN_PROCESS_ENV

ROOT = HERE.parents[2]
VENDORS = ("sqlite", "postgres")


def _postgres_reachable() -> bool:
    host = os.environ.get("CS_TEST_PG_HOST", "127.0.0.1")
    port = int(os.environ.get("CS_TEST_PG_PORT", "5432"))
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


Child = tuple[subprocess.Popen[bytes], Path]


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Child]]:
    started: dict[str, Child] = {}
    for vendor in VENDORS:
        if vendor == "postgres" and not _postgres_reachable():
            continue
        log = tmp_path_factory.mktemp(vendor) / "pytest.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    str(HERE),
                    "-q",
                    "-rfEs",
                    "-p",
                    "no:cacheprovider",
                ],
                cwd=ROOT,
                env={**os.environ, IN_PROCESS_ENV: "1", "CS_TEST_DB": vendor},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started[vendor] = (process, log)
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("vendor", VENDORS)
def test_django_adapter_suite(vendor: str, children: dict[str, Child]) -> None:
    if vendor not in children:
        message = "PostgreSQL is not reachable at 127.0.0.1:5432"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run starts it)")
        pytest.skip(message)
    process, log = children[vendor]
    process.wait(timeout=900)
    output = log.read_text(errors="replace")
    summary = output.strip().splitlines()[-1] if output.strip() else "no output"
    assert process.returncode == 0, output[-12000:]
    assert re.search(r"\d+ passed", summary), summary
    print(f"{vendor}: {summary}")
