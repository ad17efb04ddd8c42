"""The admin never shows a stored key, and an empty key field keeps it."""

from __future__ import annotations

import pytest

from creative_services.contrib.django.models import LLMModel

from .conftest import KEY

pytestmark = pytest.mark.django_db(transaction=True)


def test_change_form_does_not_show_the_key_and_keeps_it_when_left_empty(admin_client, make_llm):
    row = make_llm()
    url = f"/admin/creative_services/llmmodel/{row.pk}/change/"

    page = admin_client.get(url).content.decode()
    assert KEY not in page
    assert "fernet:" not in page

    fields = {
        "name": "renamed", "provider": "openai", "model_name": "gpt-4o-mini",
        "tier": "standard", "api_key": "", "api_endpoint": "", "max_tokens": "4096",
        "temperature": "0.7", "cost_per_1k_input": "", "cost_per_1k_output": "",
        "is_active": "on", "priority": "0", "api_key_env": "",
    }  # fmt: skip
    response = admin_client.post(url, fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert LLMModel.objects.get(pk=row.pk).api_key == KEY

    admin_client.post(url, {**fields, "api_key": "sk-new-key-0123456789"})
    assert LLMModel.objects.get(pk=row.pk).api_key == "sk-new-key-0123456789"
    admin_client.post(url, {**fields, "clear_api_key": "on"})
    assert LLMModel.objects.get(pk=row.pk).api_key == ""


def test_usage_changelist_renders_read_only(admin_client):
    page = admin_client.get("/admin/creative_services/llmusage/")
    assert page.status_code == 200
    assert admin_client.get("/admin/creative_services/llmusage/add/").status_code == 403
