"""Models, keys at rest, triggers and migrations."""

from __future__ import annotations

import io
import json

import pytest
from django.core import serializers
from django.core.management import call_command
from django.db import connection

from creative_services.adapters import DjangoLLMRegistry
from creative_services.contrib.django.crypto import UndecryptableKey
from creative_services.contrib.django.models import LLMModel, RegistryVersion
from creative_services.contrib.django.triggers import has_triggers, install_sql, remove_sql

from .conftest import KEY

pytestmark = pytest.mark.django_db(transaction=True)
TABLE = LLMModel._meta.db_table


def raw_key(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key FROM {TABLE} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_api_key_is_encrypted_at_rest(make_llm):
    row = make_llm()

    stored = raw_key(row.pk)

    assert stored.startswith("fernet:")
    assert KEY not in stored
    assert LLMModel.objects.get(pk=row.pk).api_key == KEY
    assert "abcdefghijklmnopqrstuvwxyz" not in repr(DjangoLLMRegistry().get_by_name("primary"))


def test_empty_key_stays_empty(make_llm):
    row = make_llm(api_key="", api_key_env="OPENAI_API_KEY")
    assert raw_key(row.pk) == ""


def test_keys_survive_a_secret_key_rotation(make_llm, settings):
    row = make_llm()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret"

    assert LLMModel.objects.get(pk=row.pk).api_key == KEY


def test_undecryptable_key_leaves_the_entry_out_and_keeps_the_ciphertext(make_llm, settings):
    row = make_llm("locked")
    make_llm("fine", api_key="")
    before = raw_key(row.pk)
    settings.SECRET_KEY = "another-secret-without-fallback"

    loaded = LLMModel.objects.get(pk=row.pk)
    registry = DjangoLLMRegistry()

    assert isinstance(loaded.api_key, UndecryptableKey)
    assert loaded.api_key == ""
    assert [e.name for e in registry.all_entries()] == ["fine"]
    assert "cannot be decrypted" in registry.problems[0]
    loaded.max_tokens = 10
    loaded.save()
    assert raw_key(row.pk) == before


def test_plain_text_value_is_read_then_encrypted_on_save(make_llm):
    row = make_llm(api_key="")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET api_key = %s WHERE id = %s", [KEY, row.pk])  # noqa: S608
    loaded = LLMModel.objects.get(pk=row.pk)
    assert loaded.api_key == KEY
    loaded.save()
    assert raw_key(row.pk).startswith("fernet:")


def test_serialised_rows_hold_only_the_encrypted_key(make_llm):
    make_llm()
    dumped = serializers.serialize("json", LLMModel.objects.all())

    assert KEY not in dumped
    stored = json.loads(dumped)[0]["fields"]["api_key"]
    assert stored.startswith("fernet:")
    restored = next(serializers.deserialize("json", dumped)).object
    assert restored.api_key in (KEY, stored)  # decrypted when read back from the database
    restored.save()
    assert LLMModel.objects.get().api_key == KEY


def test_triggers_bump_the_stamp_on_every_kind_of_change(make_llm):
    def version() -> int:
        return int(RegistryVersion.objects.values_list("version", flat=True).first() or 0)

    seen = [version()]
    row = make_llm()
    seen.append(version())
    LLMModel.objects.filter(pk=row.pk).update(priority=2)
    seen.append(version())
    LLMModel.objects.bulk_create([LLMModel(name="b", provider="openai", model_name="m")])
    seen.append(version())
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
    seen.append(version())

    assert seen == sorted(set(seen)), seen  # strictly increasing


def test_triggers_can_be_removed_and_installed_again():
    assert has_triggers(connection, TABLE)
    with connection.schema_editor() as editor:
        for sql in remove_sql(connection, TABLE):
            editor.execute(sql, params=None)
    assert not has_triggers(connection, TABLE)
    with connection.schema_editor() as editor:
        for sql in install_sql(connection, TABLE):
            editor.execute(sql, params=None)
    assert has_triggers(connection, TABLE)


def test_migrations_match_the_models():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
