"""A real ``creative-services serve`` process on loopback, for the gateway tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

COMMAND = str(Path(sys.executable).parent / "creative-services")
PROVIDER_KEY = "sk-provider-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def models_json(base_url: str, **prices: str) -> str:
    rows = [
        {"name": "main", "provider": "openai", "model_name": "gpt-4.1-mini", "tier": "standard",
         "api_key": PROVIDER_KEY, "api_endpoint": base_url, **prices},
        {"name": "cheap", "provider": "openai", "model_name": "gpt-4.1-nano", "tier": "economy",
         "api_key": PROVIDER_KEY, "api_endpoint": base_url, **prices},
    ]  # fmt: skip
    return json.dumps(rows)


class Gateway:
    """``creative-services serve`` in a subprocess, with its own key and usage files."""

    def __init__(self, folder: Path, base_url: str, workers: int = 1, **env: str) -> None:
        self.folder = folder
        self.clients: list[Any] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.update(
            CREATIVE_SERVICES_MODELS=models_json(base_url),
            CREATIVE_SERVICES_USAGE_DB=str(folder / "usage.sqlite3"),
            CREATIVE_SERVICES_GATEWAY_KEYS=str(folder / "keys.sqlite3"),
        )
        self.env.update(env)
        self.log = open(folder / "gateway.log", "w+b")  # noqa: SIM115
        self.process = subprocess.Popen(
            [COMMAND, "serve", "--port", str(self.port), "--workers", str(workers)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._wait()

    def _wait(self, limit: float = 60.0) -> None:
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway not up after {limit} s: {self.output()}")

    def keys(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COMMAND, "keys", *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def new_key(self, user: str = "alice", *extra: str) -> str:
        done = self.keys("create", "--user", user, *extra)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
        answer = httpx.post(self.url + path, content=body, headers=dict(headers), timeout=30)
        return answer.status_code, answer.json()

    def output(self) -> str:
        self.log.flush()
        return (self.folder / "gateway.log").read_text(errors="replace")

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()
