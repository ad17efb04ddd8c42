"""Fault suite, Django part: durable usage rows (items 9), no key in any admin page (12), keys
at rest (13). Runs on SQLite and PostgreSQL (see test_suites.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections
from django.test import override_settings

from creative_services import DynamicLLMClient, RetryPolicy
from creative_services.adapters import DjangoLLMRegistry
from creative_services.contrib.django.crypto import PREFIX, UndecryptableKey, decrypt
from creative_services.contrib.django.models import LLMModel, LLMUsage
from creative_services.contrib.django.tracking import DjangoUsageTracker

from .conftest import KEY

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = LLMModel._meta.db_table


def pieces(secret: str, size: int = 8) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaked(secret: str, text: str) -> list[str]:
    return [p for p in pieces(secret) if p in text]


def raw_key(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key FROM {TABLE} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def count_rows() -> int:
    """Count in a worker thread and close its connection (PostgreSQL drops the DB at the end)."""
    try:
        return int(LLMUsage.objects.count())
    finally:
        connections.close_all()


def request_ids() -> list[str]:
    try:
        return list(LLMUsage.objects.values_list("request_id", flat=True))
    finally:
        connections.close_all()


def in_thread(make: Any) -> Any:
    """Run ``make`` (which queries) from a worker thread, closing that thread's connection."""

    def run() -> Any:
        try:
            return make()
        finally:
            connections.close_all()

    return asyncio.to_thread(run)


# --- 9. durability ----------------------------------------------------------------------------


async def test_client_row_survives_a_transient_database_error(make_llm, fake_provider, monkeypatch):
    await in_thread(make_llm)
    real_save = LLMUsage.save
    failures = iter([OperationalError("server closed the connection unexpectedly")])

    def flaky_save(self: Any, *args: Any, **kwargs: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(LLMUsage, "save", flaky_save)
    tracker = DjangoUsageTracker(retry_delay=0.001)
    client = DynamicLLMClient(DjangoLLMRegistry(), tracker=tracker)
    response = await client.generate(prompt="hi")

    rows = await asyncio.to_thread(request_ids)
    assert rows == [response.request_id]  # retried once: one row, not zero, not two
    assert not tracker.failed
    assert not client.failed_records


async def test_shutdown_flushes_pending_batched_rows_within_its_deadline(make_llm, fake_provider):
    await in_thread(make_llm)
    tracker = DjangoUsageTracker(batch=True, batch_size=10_000, flush_interval=3600)
    client = DynamicLLMClient(DjangoLLMRegistry(), tracker=tracker)
    await asyncio.gather(*(client.generate(prompt="hi", user_id=i) for i in range(30)))
    started = time.monotonic()
    await asyncio.to_thread(tracker.close, 20)
    assert time.monotonic() - started < 20
    assert await asyncio.to_thread(count_rows) == 30
    assert not tracker.failed


def test_flush_returns_at_its_deadline_when_the_database_hangs(monkeypatch):
    release = threading.Event()
    real_insert = DjangoUsageTracker._insert

    def hanging_insert(self: Any, records: Any) -> None:
        release.wait(30)
        real_insert(self, records)

    monkeypatch.setattr(DjangoUsageTracker, "_insert", hanging_insert)
    tracker = DjangoUsageTracker(batch=True, flush_interval=0.01)
    tracker.record(llm_id=1)
    started = time.monotonic()
    assert tracker.flush(timeout=0.3) is False
    assert time.monotonic() - started < 3
    release.set()
    assert tracker.flush(timeout=30)
    tracker.close(5)
    assert LLMUsage.objects.count() == 1


EXIT_CHILD = """
import signal
import django
from django.conf import settings
from contrib.django import settings as test_settings
settings.configure(**{k: getattr(test_settings, k) for k in dir(test_settings) if k.isupper()})
django.setup()
from creative_services.adapters import DjangoUsageTracker

signal.alarm(60)
tracker = DjangoUsageTracker(batch=True, batch_size=10_000, flush_interval=3600)
for i in range(25):
    tracker.record(llm_id=None, user_id="at-exit")
print("queued", tracker.pending, flush=True)
# no flush, no close: interpreter exit must write them
"""


def test_interpreter_exit_flushes_batched_rows():
    tests_dir = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")]),
        "CS_TEST_DB_NAME": str(connections["default"].settings_dict["NAME"]),
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_CHILD)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["queued", "25"]
    assert time.monotonic() - started < 60
    assert LLMUsage.objects.filter(user_id="at-exit").count() == 25


# --- 12. no key in any admin page -------------------------------------------------------------


def admin_pages(client: Any, pk: int) -> dict[str, str]:
    base = "/admin/creative_services/llmmodel/"
    urls = {
        "changelist": base,
        "change": f"{base}{pk}/change/",
        "history": f"{base}{pk}/history/",
        "delete": f"{base}{pk}/delete/",
        "search": f"{base}?q=primary",
        "usage": "/admin/creative_services/llmusage/",
    }
    pages = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        pages[name] = response.content.decode()
    return pages


def test_no_admin_page_shows_the_key_even_after_a_401_echoing_it(
    admin_client, make_llm, fake_provider
):
    row = make_llm("primary")
    fake_provider.fail(401, f"Incorrect API key provided: {KEY}")
    response = admin_client.post(
        "/admin/creative_services/llmmodel/",
        {"action": "test_models", "_selected_action": [str(row.pk)]},
        follow=True,
    )
    messages = [m.message for m in response.context["messages"]]
    assert len(messages) == 1
    assert "AuthenticationError" in messages[0]
    assert leaked(KEY, "\n".join(messages) + response.content.decode()) == []

    new_key = "sk-" + "fault-rotated-Mn8Bv6Cx4Zl2Kj0H"
    fields = {
        "name": "primary", "provider": "openai", "model_name": "gpt-4o-mini",
        "tier": "standard", "api_key": new_key, "api_endpoint": fake_provider.base_url,
        "max_tokens": "4096", "temperature": "0.7", "cost_per_1k_input": "",
        "cost_per_1k_output": "", "is_active": "on", "priority": "0", "api_key_env": "",
    }  # fmt: skip
    saved = admin_client.post(f"/admin/creative_services/llmmodel/{row.pk}/change/", fields)
    assert saved.status_code == 302
    assert LLMModel.objects.get(pk=row.pk).api_key == new_key

    for name, page in admin_pages(admin_client, row.pk).items():
        for secret in (KEY, new_key):
            assert leaked(secret, page) == [], f"the {name} page shows a piece of the key"
        assert PREFIX not in page, f"the {name} page shows the ciphertext"
    assert LLMUsage.objects.get().error_class == "AuthenticationError"


# --- 13. keys at rest -------------------------------------------------------------------------


def test_the_column_holds_only_fresh_ciphertext(make_llm):
    first = make_llm("one")
    second = make_llm("two")
    stored = [raw_key(first.pk), raw_key(second.pk)]
    for value in stored:
        assert value.startswith(PREFIX)
        assert leaked(KEY, value) == []
    assert stored[0] != stored[1]  # a random IV per encryption: equal keys do not look equal
    first.save()
    assert raw_key(first.pk) != stored[0]


def test_rotating_the_encryption_key_list_re_encrypts_on_save(make_llm):
    with override_settings(CREATIVE_SERVICES_ENCRYPTION_KEY="old-dedicated-key"):
        row = make_llm()
        old = raw_key(row.pk)
    rotated = {
        "CREATIVE_SERVICES_ENCRYPTION_KEY": ["new-dedicated-key", "old-dedicated-key"],
        "SECRET_KEY": "unrelated-secret",
        "SECRET_KEY_FALLBACKS": [],
    }
    with override_settings(**rotated):
        loaded = LLMModel.objects.get(pk=row.pk)
        assert loaded.api_key == KEY
        loaded.save()  # re-encrypted with the newest key
        new = raw_key(row.pk)
        assert new != old
        assert new.startswith(PREFIX)
    with override_settings(
        CREATIVE_SERVICES_ENCRYPTION_KEY="new-dedicated-key",
        SECRET_KEY="unrelated-secret",
        SECRET_KEY_FALLBACKS=[],
    ):
        assert decrypt(new) == KEY  # the old key can now be retired
        assert isinstance(decrypt(old), UndecryptableKey)
        assert DjangoLLMRegistry().get_by_name("primary").api_key.get_secret_value() == KEY


def test_a_client_call_reads_the_key_decrypted_and_sends_only_that(make_llm, fake_provider):
    make_llm()
    client = DynamicLLMClient(
        DjangoLLMRegistry(),
        tracker=DjangoUsageTracker(),
        retry_policy=RetryPolicy(max_retries=0),
    )
    client.generate_sync(prompt="hi")
    [request] = fake_provider.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    row = LLMUsage.objects.values().get()
    assert leaked(KEY, repr(row)) == []
