"""The gateway in a Django project: the project's registry table, usage table and budget."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from creative_services.testing import FakeProvider

from ._gateway import PROVIDER_KEY, Gateway

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
ADD_ENTRY = """
from creative_services.contrib.django.models import LLMModel
LLMModel.objects.create(name="db-entry", provider="openai", model_name="gpt-4.1-mini",
    tier="standard", api_key="{key}", api_endpoint="{url}", is_active=True)
"""


def test_gateway_uses_the_django_registry_and_usage_table(
    fake_provider: FakeProvider, tmp_path: Path
) -> None:
    db = tmp_path / "example.sqlite3"
    env = {"EXAMPLE_DB_PATH": str(db), "PYTHONPATH": str(EXAMPLE),
           "DJANGO_SETTINGS_MODULE": "exampleproject.settings"}  # fmt: skip
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    base.pop("CREATIVE_SERVICES_MODELS", None)
    for args in (
        ["migrate", "-v0"],
        ["shell", "-c", ADD_ENTRY.format(key=PROVIDER_KEY, url=fake_provider.base_url)],
    ):
        done = subprocess.run([*manage, *args], env={**base, **env}, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
    gateway = Gateway(tmp_path, fake_provider.base_url, **env)
    try:
        key = gateway.new_key("frank")
        with openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0) as client:
            assert "db-entry" in [m.id for m in client.models.list()]
            reply = client.chat.completions.create(
                model="standard", messages=[{"role": "user", "content": "hi"}]
            )
        assert reply.choices[0].message.content == "fake answer"
        assert fake_provider.requests[-1].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        rows: list[tuple[str, str, str]] = []
        for _ in range(50):  # the batched tracker writes within its flush interval
            with sqlite3.connect(db) as conn:
                rows = conn.execute(
                    "SELECT entry_name, user_id, outcome FROM creative_services_llmusage"
                ).fetchall()
            if rows:
                break
            time.sleep(0.1)
        assert rows == [("db-entry", "frank", "success")]
        with sqlite3.connect(db) as conn:  # the key lives in the project's table, hashed
            keys = conn.execute("SELECT key_id, user_id FROM creative_services_gatewaykey")
            ((key_id, user),) = keys.fetchall()
        assert user == "frank"
        assert key not in db.read_bytes().decode("latin-1")
        revoke = [*manage, "creative_services_keys", "revoke", key_id]
        done = subprocess.run(
            revoke, env={**base, **env}, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        time.sleep(1.0)
        revoked = openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
        with revoked, pytest.raises(openai.AuthenticationError, match="revoked"):
            revoked.models.list()
    finally:
        gateway.stop()
