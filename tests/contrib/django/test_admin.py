"""The admin: a write-only key, entry filters, the "test this model" action, read-only usage
with filters and totals."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from creative_services.contrib.django.models import LLMModel, LLMUsage
from creative_services.contrib.django.tracking import DjangoUsageTracker

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

    admin_client.post(url, {**fields, "api_key": "sk-" + "new-key-0123456789"})
    assert LLMModel.objects.get(pk=row.pk).api_key == "sk-" + "new-key-0123456789"
    admin_client.post(url, {**fields, "clear_api_key": "on"})
    assert LLMModel.objects.get(pk=row.pk).api_key == ""


def test_usage_changelist_renders_read_only(admin_client):
    page = admin_client.get("/admin/creative_services/llmusage/")
    assert page.status_code == 200
    assert admin_client.get("/admin/creative_services/llmusage/add/").status_code == 403


# --- entries: filters and the "test this model" action -----------------------------------------

CHANGELIST = "/admin/creative_services/llmmodel/"
USAGE = "/admin/creative_services/llmusage/"


def listed_names(client, query: str = "") -> set[str]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return {obj.name for obj in response.context["cl"].result_list}


def test_entries_filter_by_tier_provider_and_state(admin_client, make_llm):
    make_llm("cheap", tier="economy")
    make_llm("smart", tier="premium", provider="anthropic", model_name="claude-sonnet-4-5")
    make_llm("off", tier="premium", is_active=False)

    assert listed_names(admin_client) == {"cheap", "smart", "off"}
    assert listed_names(admin_client, "?tier__exact=premium") == {"smart", "off"}
    assert listed_names(admin_client, "?provider__exact=anthropic") == {"smart"}
    assert listed_names(admin_client, "?is_active__exact=0") == {"off"}
    assert listed_names(admin_client, "?tier__exact=premium&is_active__exact=1") == {"smart"}
    page = admin_client.get(CHANGELIST).content.decode()
    assert KEY not in page
    assert "fernet:" not in page


def run_test_action(client, *rows) -> list[tuple[str, str]]:
    response = client.post(
        CHANGELIST,
        {"action": "test_models", "_selected_action": [str(r.pk) for r in rows]},
        follow=True,
    )
    assert response.status_code == 200
    return [(m.tags, m.message) for m in response.context["messages"]]


def test_test_action_reports_answer_tokens_cost_and_latency(admin_client, make_llm, fake_provider):
    row = make_llm("primary", is_active=False)  # inactive entries can be tested too
    fake_provider.reply("OK", prompt_tokens=1000, completion_tokens=1000)

    ((level, text),) = run_test_action(admin_client, row)

    assert level == "success", text
    assert text.startswith("primary: OK in ")
    assert "'OK'" in text
    assert "tokens 1000 in + 1000 out" in text
    assert "cost $0.00075 (entry)" in text
    assert KEY not in text
    (request,) = fake_provider.requests
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["max_tokens"] == 16
    assert request.headers["authorization"] == f"Bearer {KEY}"
    usage = LLMUsage.objects.get()  # the call is on the books like any other
    assert (usage.llm_id, usage.cost, usage.metadata) == (
        row.pk, Decimal("0.00075"), {"source": "admin test"}
    )  # fmt: skip


def test_test_action_messages_name_each_error(admin_client, make_llm, fake_provider):
    failing = make_llm("failing")
    keyless = make_llm("keyless", api_key="", api_key_env="CS_TEST_UNSET_VARIABLE")
    fake_provider.fail(401, "invalid api key")

    reports = run_test_action(admin_client, failing, keyless)

    assert [level for level, _ in reports] == ["error", "error"]
    texts = sorted(text for _, text in reports)
    assert texts[0].startswith("failing: failed with AuthenticationError")
    assert texts[1].startswith("keyless: failed with MissingAPIKeyError")
    assert "CS_TEST_UNSET_VARIABLE" in texts[1]
    assert len(fake_provider.requests) == 1  # no retry; the keyless one never calls


OPAQUE = "opaque-" + "Qm4Zr8Lx2Vt6Np0Wc3Hj"  # no provider's key shape: only its value can mask it


def _pieces(secret: str) -> list[str]:
    return [secret[i : i + 8] for i in range(len(secret) - 7)]


def test_test_action_masks_a_key_the_answer_echoes(admin_client, make_llm, fake_provider):
    row = make_llm("echoing", api_key=OPAQUE)
    fake_provider.reply(f"Your key is {OPAQUE}, thanks")
    fake_provider.fail(401, f"Incorrect API key provided: {OPAQUE}. You can find your key")

    reports = run_test_action(admin_client, row) + run_test_action(admin_client, row)

    assert [level for level, _ in reports] == ["success", "error"]
    assert "Your key is **********, thanks" in reports[0][1]
    assert "AuthenticationError" in reports[1][1]
    for _, text in reports:
        assert [p for p in _pieces(OPAQUE) if p in text] == [], text
    assert fake_provider.requests[0].headers["authorization"] == f"Bearer {OPAQUE}"  # it was used


def test_test_action_refuses_too_many_entries(admin_client, make_llm, fake_provider):
    rows = [make_llm(f"m{i}") for i in range(11)]
    ((level, text),) = run_test_action(admin_client, *rows)
    assert level == "warning"
    assert "at most 10" in text
    assert not fake_provider.requests


# --- usage: read-only, filters, totals -----------------------------------------------------------


@pytest.fixture
def usage_rows() -> None:
    tracker = DjangoUsageTracker()
    old = timezone.now() - dt.timedelta(days=40)
    common = {"provider": "openai", "model": "gpt-4o-mini", "tier": "standard"}
    for _ in range(3):
        tracker.record(
            llm_id=1, user_id=7, prompt_tokens=100, completion_tokens=50, cost=0.001, **common
        )
    tracker.record(
        llm_id=1, user_id=8, prompt_tokens=10, completion_tokens=5, cost="0.25", created_at=old,
        **common,
    )  # fmt: skip
    tracker.record(
        llm_id=2, user_id=8, provider="anthropic", model="claude-haiku-4-5", tier="premium",
        prompt_tokens=20, outcome="error", error_class="RateLimitError",
    )  # fmt: skip


def usage_page(client, query: str = "") -> tuple[int, dict[str, str]]:
    """The number of rows listed and the totals footer's cells."""
    response = client.get(USAGE + query)
    assert response.status_code == 200, response.content.decode()[:2000]
    html = response.content.decode()
    cells = dict(re.findall(r'<td class="usage-([a-z-]+)">([^<]*)</td>', html))
    return response.context["cl"].result_count, cells


def test_usage_totals_cover_all_filtered_rows(admin_client, usage_rows):
    count, totals = usage_page(admin_client)
    assert count == 5
    assert totals == {
        "calls": "5", "failures": "1", "prompt-tokens": "330", "completion-tokens": "155",
        "total-tokens": "485", "cost": "0.253 (1 without a known cost)",
    }  # fmt: skip

    count, totals = usage_page(admin_client, "?user=7")
    assert (count, totals["calls"], totals["cost"], totals["total-tokens"]) == (
        3,
        "3",
        "0.003",
        "450",
    )

    count, totals = usage_page(admin_client, "?tier__exact=premium")
    assert (count, totals["failures"], totals["cost"]) == (1, "1", "0 (1 without a known cost)")

    count, totals = usage_page(admin_client, "?model__exact=gpt-4o-mini&user=8")
    assert (count, totals["cost"]) == (1, "0.25")


def test_usage_date_filter_and_hierarchy(admin_client, usage_rows):
    from urllib.parse import urlencode

    response = admin_client.get(USAGE)
    dates = response.context["cl"].filter_specs[0]
    params = dict(dates.links)["Past 7 days"]
    count, totals = usage_page(admin_client, "?" + urlencode(params))
    assert (count, totals["cost"]) == (4, "0.003 (1 without a known cost)")
    today = timezone.localdate()
    count, _ = usage_page(admin_client, f"?created_at__year={today.year}")
    assert count >= 4


def test_usage_filters_are_offered(admin_client, usage_rows):
    response = admin_client.get(USAGE)
    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert titles == ["created at", "user", "tier", "model", "outcome", "provider"]
    user_filter = response.context["cl"].filter_specs[1]
    assert {value for value, _ in user_filter.lookup_choices} == {"7", "8"}


def test_usage_admin_is_read_only(admin_client, usage_rows):
    row = LLMUsage.objects.first()
    assert admin_client.get(f"{USAGE}add/").status_code == 403
    assert admin_client.get(f"{USAGE}{row.pk}/delete/").status_code == 403
    page = admin_client.get(f"{USAGE}{row.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = admin_client.post(f"{USAGE}{row.pk}/change/", {"cost": "9"})
    assert response.status_code == 403
    assert LLMUsage.objects.get(pk=row.pk).cost == row.cost
