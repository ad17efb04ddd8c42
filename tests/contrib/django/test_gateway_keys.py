"""The gateway's virtual keys in the project's database: store, admin and command."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from creative_services.contrib.django.gateway_keys import DjangoKeyStore
from creative_services.contrib.django.gateway_models import GatewayKey
from creative_services.exceptions import AuthenticationError
from creative_services.gateway.keys import hash_key

pytestmark = pytest.mark.django_db(transaction=True)


def test_store_keeps_only_the_hash_and_refuses_revoked_and_expired_keys() -> None:
    clock = [1_000_000.0]
    store = DjangoKeyStore(clock=lambda: clock[0])
    key, record = store.create("u1", models=["economy"], expires_in=60)
    row = GatewayKey.objects.get(pk=record.key_id)
    assert row.key_hash == hash_key(key)
    assert key not in repr(list(GatewayKey.objects.values()))
    assert store.authenticate(f"Bearer {key}").user_id == "u1"
    assert store.authenticate(f"Bearer {key}").allows("economy")
    assert not store.authenticate(f"Bearer {key}").allows("premium")
    clock[0] += 61
    with pytest.raises(AuthenticationError, match="expired"):
        store.authenticate(f"Bearer {key}")
    other, other_record = store.create("u2")
    assert store.revoke(other_record.key_id)
    assert not store.revoke(other_record.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        DjangoKeyStore().authenticate(f"Bearer {other}")  # a fresh store: no cached lookup


def test_admin_creates_a_key_shown_once_and_revokes_it(admin_client) -> None:
    page = admin_client.post(
        "/admin/creative_services/gatewaykey/add/",
        {"user_id": "ann", "name": "ci", "allowed": "standard, economy", "days": "1"},
        follow=True,
    ).content.decode()
    (key,) = re.findall(r"csk-[A-Za-z0-9_-]{43}", page)
    row = GatewayKey.objects.get()
    assert (row.user_id, row.model_names, row.key_hash) == ("ann", ["standard", "economy"],
                                                          hash_key(key))  # fmt: skip
    listing = admin_client.get("/admin/creative_services/gatewaykey/").content.decode()
    assert key not in listing
    assert "active" in listing
    admin_client.post(
        "/admin/creative_services/gatewaykey/",
        {"action": "revoke_keys", "_selected_action": [row.pk]},
    )
    with pytest.raises(AuthenticationError, match="revoked"):
        DjangoKeyStore().authenticate(f"Bearer {key}")
    assert "revoked" in admin_client.get("/admin/creative_services/gatewaykey/").content.decode()


def test_management_command_creates_lists_and_revokes() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("creative_services_keys", "create", "--user", "bo", "--model", "local",
                 stdout=out, stderr=err)  # fmt: skip
    key = out.getvalue().strip()
    assert key.startswith("csk-")
    assert "shown once" in err.getvalue()
    listed = io.StringIO()
    call_command("creative_services_keys", "list", stdout=listed)
    assert key not in listed.getvalue()
    assert "user=bo" in listed.getvalue()
    key_id = listed.getvalue().split()[0]
    call_command("creative_services_keys", "revoke", key_id, stdout=io.StringIO())
    with pytest.raises(CommandError, match="no active key"):
        call_command("creative_services_keys", "revoke", key_id, stdout=io.StringIO())
    with pytest.raises(CommandError, match="user id"):
        call_command("creative_services_keys", "create", "--user", " ", stdout=io.StringIO())
