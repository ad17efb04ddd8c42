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


def test_setting_an_encryption_key_keeps_secret_key_as_a_decrypt_only_key(make_llm, settings):
    from django.test import override_settings

    from creative_services.contrib.django.crypto import decrypt

    row = make_llm()
    old = raw_key(row.pk)
    settings.SECRET_KEY_FALLBACKS = ["an-older-secret"]

    with override_settings(CREATIVE_SERVICES_ENCRYPTION_KEY="the-dedicated-key"):
        loaded = LLMModel.objects.get(pk=row.pk)
        assert loaded.api_key == KEY
        assert DjangoLLMRegistry().get_by_name("primary").api_key.get_secret_value() == KEY
        loaded.save()  # re-encrypts with the preferred key
        new = raw_key(row.pk)

    assert new != old
    only_new = {"SECRET_KEY": "unrelated", "SECRET_KEY_FALLBACKS": []}
    with override_settings(CREATIVE_SERVICES_ENCRYPTION_KEY="the-dedicated-key", **only_new):
        assert decrypt(new) == KEY
        assert isinstance(decrypt(old), UndecryptableKey)
    assert isinstance(decrypt(new), UndecryptableKey)  # SECRET_KEY alone does not open it


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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL row locks")
def test_multi_row_transaction_does_not_deadlock_with_a_concurrent_save(make_llm):
    """A changes row 1, B saves row 2 alone, then A changes row 2: no deadlock on the stamp."""
    import threading
    import time

    from django.db import connections, transaction

    def version() -> int:
        return int(RegistryVersion.objects.values_list("version", flat=True).first() or 0)

    one, two = make_llm("one"), make_llm("two")
    before = version()
    errors: list[BaseException] = []

    def single_save() -> None:
        try:
            row = LLMModel.objects.get(pk=two.pk)
            row.priority = 7
            row.save()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    other = threading.Thread(target=single_save)
    with transaction.atomic():
        LLMModel.objects.filter(pk=one.pk).update(priority=3)
        other.start()
        deadline = time.monotonic() + 5
        while other.is_alive() and time.monotonic() < deadline:
            with connection.cursor() as cursor:  # B either finished or waits on a lock
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.02)
        LLMModel.objects.filter(pk=two.pk).update(is_active=False)
    other.join(timeout=10)

    assert not other.is_alive()
    assert errors == []
    assert dict(LLMModel.objects.values_list("name", "priority")) == {"one": 3, "two": 7}
    assert not LLMModel.objects.get(pk=two.pk).is_active
    assert version() > before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL triggers")
def test_many_rows_in_one_transaction_bump_the_stamp_at_commit(make_llm):
    from django.db import transaction

    def version() -> int:
        return int(RegistryVersion.objects.values_list("version", flat=True).first() or 0)

    before = version()
    with transaction.atomic():
        LLMModel.objects.bulk_create(
            [LLMModel(name=f"r{i}", provider="openai", model_name="m") for i in range(50)]
        )
        LLMModel.objects.update(priority=5)
        assert version() == before  # deferred: nothing bumped before commit
    after = version()
    assert after > before
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
    assert version() > after
